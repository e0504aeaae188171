"""Inventory parsing without a server: the continuation-token loop, value parsing, boot detection.

The pages in tests/data/vsphere/ are one RetrievePropertiesEx answer recorded from vcsimlab
(3 hosts with vmhba32/vmkusb and OSDATA on mpx.vmhba32:C0:T0:L0), split into three pages
with tokens in the shape a paging vCenter uses, since vcsim itself never pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.esxi import BuildCatalog
from bot.model import BootKind, ConnectionState
from bot.vsphere.inventory import Snapshot, bootbank_mounted, detect_boot, release_lookup, retrieve_all
from bot.vsphere.soap import Data, MoRef, SoapFault, parse_updates

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

    return {
        "config.storageDevice.hostBusAdapter": [hba(*h) for h in hbas],
        "config.fileSystemVolume.mountInfo": [mount(*v) for v in volumes],
    }


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
