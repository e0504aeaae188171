"""Inventory parsing without a server: the continuation-token loop, value parsing, boot detection.

The pages in tests/data/vsphere/ are one RetrievePropertiesEx answer recorded from vcsimlab
(3 hosts with vmhba32/vmkusb and OSDATA on mpx.vmhba32:C0:T0:L0), split into three pages
with tokens in the shape a paging vCenter uses, since vcsim itself never pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.builds import BuildCatalog
from bot.model import BootKind, ConnectionState
from bot.vsphere.host_retrieval import (
    Snapshot,
    bootbank_mounted,
    detect_boot,
    parse_page,
    release_lookup,
    retrieve_all,
)
from bot.vsphere.hostprops import DECODERS, FIELDS, Volume, from_data
from bot.vsphere.soap import Data, MoRef, ObjectContent, SoapFault, parse_retrieve, parse_updates
from bot.vsphere.soap_scan import Unsupported, leaf, scan_retrieve, tag

PAGES = Path(__file__).parent / "data" / "vsphere"
COLLECTOR = MoRef("PropertyCollector", "propertyCollector")


def _recorded_vcenter() -> tuple[list[bytes], Any]:
    pages = {
        b"<RetrievePropertiesEx ": (PAGES / "retrieve-page1.xml").read_bytes(),
        b"<token>session[52b5]1</token>": (PAGES / "retrieve-page2.xml").read_bytes(),
        b"<token>session[52b5]2</token>": (PAGES / "retrieve-page3.xml").read_bytes(),
    }
    sent: list[bytes] = []

    def post(body: bytes) -> bytes:
        sent.append(body)
        matches = [answer for marker, answer in pages.items() if marker in body]
        assert len(matches) == 1, body
        return matches[0]

    return sent, post


def test_continuation_token_loop_collects_every_page() -> None:
    sent, post = _recorded_vcenter()
    objects = retrieve_all(post, COLLECTOR, "<propSet/>", page_size=5)
    assert len(sent) == 3
    assert b"<maxObjects>5</maxObjects>" in sent[0]
    assert b"<ContinueRetrievePropertiesEx " in sent[1] and b"<ContinueRetrievePropertiesEx " in sent[2]
    hosts = Snapshot(objects).hosts("vc1", release_lookup(BuildCatalog.bundled()))
    assert [h.name for h in hosts] == ["esx-a", "esx-b", "esx-c"]
    first = hosts[0]
    assert (first.datacenter, first.cluster, first.vcenter) == ("dc1", "prod", "vc1")
    assert (first.build, first.version, first.release_name) == (17867351, "7.0.2", "ESXi 7.0 Update 2a")
    assert first.boot_device.kind is BootKind.USB
    assert (first.boot_device.device, first.boot_device.adapter, first.boot_device.driver) == (
        "mpx.vmhba32:C0:T0:L0",
        "vmhba32",
        "vmkusb",
    )
    assert first.connection_state is ConnectionState.CONNECTED
    assert "ixgben" in first.drivers


def test_fault_is_raised_with_its_kind() -> None:
    fault = (
        b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        b"<faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring>"
        b'<detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"/></detail>'
        b"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    with pytest.raises(SoapFault) as caught:
        retrieve_all(lambda _body: fault, COLLECTOR, "")
    assert caught.value.kind == "NotAuthenticated"


def test_update_set_modifies_and_removes() -> None:
    answer = (
        b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        b'<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>7</version><filterSet>'
        b'<filter type="PropertyFilter">f1</filter><objectSet><kind>modify</kind>'
        b'<obj type="HostSystem">host-17</obj><changeSet><name>runtime.connectionState</name><op>assign</op>'
        b'<val xsi:type="HostSystemConnectionState">notResponding</val></changeSet>'
        b"<changeSet><name>summary.config.product.build</name><op>remove</op></changeSet>"
        b"</objectSet></filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"
    )
    _sent, post = _recorded_vcenter()
    snapshot = Snapshot(retrieve_all(post, COLLECTOR, ""))
    updates = parse_updates(answer)
    assert updates is not None and updates.version == "7"
    assert snapshot.apply(updates) == 1
    host = next(h for h in snapshot.hosts("vc1") if h.name == "esx-a")
    assert host.connection_state is ConnectionState.NOT_RESPONDING
    assert host.build is None


def _props(
    hbas: list[tuple[str, str, str]], volumes: list[tuple[str, str, str | None, bool]]
) -> dict[str, Any]:
    def hba(device: str, driver: str, model: str) -> Data:
        d = Data("HostBlockHba")
        d.update(device=device, driver=driver, model=model)
        return d

    def mount(name: str, vtype: str, disk: str | None, mounted: bool) -> Data:
        vol = Data("HostVmfsVolume" if disk else "HostVfatVolume")
        vol.update(name=name, type=vtype)
        if disk:
            ext = Data("HostScsiDiskPartition")
            ext.update(diskName=disk, partition="7")
            vol["extent"] = ext
        info = Data("HostMountInfo")
        info.update(mounted="true" if mounted else "false", accessible="true" if mounted else "false")
        m = Data("HostFileSystemMountInfo")
        m.update(volume=vol, mountInfo=info)
        return m

    raw = {
        "config.storageDevice.hostBusAdapter": [hba(*h) for h in hbas],
        "config.fileSystemVolume.mountInfo": [mount(*v) for v in volumes],
    }
    return {path: from_data(path, value) for path, value in raw.items()}


@pytest.mark.parametrize(
    ("hbas", "volumes", "kind", "adapter"),
    [
        (
            [("vmhba32", "vmkusb", "USB")],
            [("OSDATA-1", "VMFSOS", "mpx.vmhba32:C0:T0:L0", True)],
            "usb",
            "vmhba32",
        ),
        ([("vmhba33", "vmkusb", "Dual SD card IDSDM")], [("BOOTBANK1", "vfat", None, True)], "sd", "vmhba33"),
        (
            [("vmhba1", "vmw_ahci", "SATA")],
            [("OSDATA-1", "VMFSOS", "mpx.vmhba1:C0:T0:L0", True)],
            "disk",
            "vmhba1",
        ),
        (
            [("vmhba2", "nvme_pcie", "NVMe")],
            [("OSDATA-1", "VMFSOS", "t10.NVMe____Dell_BOSS", True)],
            "nvme",
            None,
        ),
        ([("vmhba0", "lsi_mr3", "PERC")], [("BOOTBANK1", "vfat", None, True)], "unknown", None),
        ([], [], "unknown", None),
    ],
)
def test_boot_device_rules(hbas: Any, volumes: Any, kind: str, adapter: str | None) -> None:
    boot = detect_boot(_props(hbas, volumes))
    assert (boot.kind.value, boot.adapter) == (kind, adapter)
    assert boot.reason


def test_bootbank_mount_state() -> None:
    lost = _props([], [("BOOTBANK1", "vfat", None, False), ("BOOTBANK2", "vfat", None, True)])
    assert bootbank_mounted(lost) is False
    assert bootbank_mounted(_props([], [("OSDATA-1", "VMFSOS", "naa.1", True)])) is None


def _decoded_by_elementtree(payload: bytes) -> list[ObjectContent]:
    page = parse_retrieve(payload, FIELDS)
    return [ObjectContent(o.obj, {k: from_data(k, v) for k, v in o.props.items()}) for o in page.objects]


@pytest.mark.parametrize("page", ["retrieve-page1.xml", "retrieve-page2.xml", "retrieve-page3.xml"])
def test_scanner_and_elementtree_agree_on_recorded_pages(page: str) -> None:
    payload = (PAGES / page).read_bytes()
    scanned = scan_retrieve(payload, DECODERS)
    assert scanned.objects and list(scanned.objects) == _decoded_by_elementtree(payload)
    assert scanned.token == parse_retrieve(payload).token


def _answer(props: str) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        b'<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
        b'<objects><obj type="HostSystem">host-9</obj>'
        + props.encode()
        + b"</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"
    )


def test_scanner_reads_entities_attributes_and_empty_values() -> None:
    payload = _answer(
        '<propSet><name>name</name><val xsi:type="xsd:string">esx&amp;1 &lt;lab&gt;</val></propSet>'
        '<propSet><name>vm</name><val xsi:type="ArrayOfManagedObjectReference"/></propSet>'
        '<propSet><name>configIssue</name><val xsi:type="ArrayOfEvent"><Event xsi:type="EventEx">'
        "<key>1</key><fullFormattedMessage>Lost &quot;boot&quot; device</fullFormattedMessage>"
        "</Event></val></propSet>"
        "<propSet><name>config.fileSystemVolume.mountInfo</name>"
        '<val xsi:type="ArrayOfHostFileSystemMountInfo">'
        "<HostFileSystemMountInfo><mountInfo><path>/vmfs/volumes/x</path>"
        '<mounted xsi:type="xsd:boolean">false'
        "</mounted><accessible>true</accessible></mountInfo>"
        '<volume xsi:type="HostVfatVolume"><type>vfat</type><name>BOOTBANK1</name></volume>'
        "</HostFileSystemMountInfo>"
        "<HostFileSystemMountInfo><mountInfo><mounted>true</mounted></mountInfo>"
        '<volume xsi:type="HostVmfsVolume">'
        "<type>VMFS</type><name>datastore1</name><extent><diskName>naa.1</diskName></extent></volume>"
        "</HostFileSystemMountInfo></val></propSet>"
        '<propSet><name>config.network.pnic</name><val xsi:type="ArrayOfPhysicalNic">'
        "<PhysicalNic><device>vmnic0</device><driver>ixgben</driver><driverVersion>1.8</driverVersion>"
        "</PhysicalNic><PhysicalNic><device>vmnic1</device><driverVersion>2</driverVersion></PhysicalNic>"
        "<PhysicalNic><device>vmnic2</device><driver>bnxtnet</driver></PhysicalNic></val></propSet>"
    )
    scanned = scan_retrieve(payload, DECODERS).objects[0].props
    assert scanned == _decoded_by_elementtree(payload)[0].props
    assert scanned["name"] == "esx&1 <lab>"
    assert scanned["vm"] == 0
    assert scanned["configIssue"] == ('Lost "boot" device',)
    assert scanned["config.network.pnic"] == ("ixgben", "bnxtnet")
    assert scanned["config.fileSystemVolume.mountInfo"] == (Volume("BOOTBANK1", "vfat", False, True, ()),)


@pytest.mark.parametrize(
    "props",
    [
        "<propSet> <name>name</name><val>esx</val></propSet>",  # spaced layout
        "<propSet><name>name</name><val><![CDATA[esx]]></val></propSet>",
        "<propSet><name>summary</name><val>whole summary</val></propSet>",  # no decoder
    ],
)
def test_scanner_declines_what_it_does_not_read_and_parse_page_falls_back(props: str) -> None:
    payload = _answer(props)
    with pytest.raises(Unsupported):
        scan_retrieve(payload, DECODERS)
    assert [o.obj for o in parse_page(payload).objects] == [MoRef("HostSystem", "host-9")]


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (b"<a><name>plain</name></a>", "plain"),
        (b"<a><nameX>no</nameX><name>second</name></a>", "second"),
        (b'<a><name xsi:type="xsd:string">typed</name><name>later</name></a>', "typed"),
        (b"<a><name>R&amp;D</name></a>", "R&D"),
        (b"<a><name/><name>later</name></a>", ""),
        (b"<a><nameX>only a longer name</nameX></a>", None),
    ],
)
def test_leaf_reads_the_first_element_of_that_name(xml: bytes, expected: str | None) -> None:
    assert leaf(xml, tag(b"name"), 0, len(xml)) == expected


def test_leaf_declines_element_content() -> None:
    xml = b"<a><name><b>x</b></name></a>"
    with pytest.raises(Unsupported):
        leaf(xml, tag(b"name"), 0, len(xml))
