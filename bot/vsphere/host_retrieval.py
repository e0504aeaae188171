"""Host facts from one PropertyCollector retrieval, kept current by WaitForUpdatesEx.

What is collected: one ContainerView over the root folder (hosts, compute resources, folders,
datacenters) and only leaf property paths (``HOST_PATHS``), never whole ``runtime``, ``summary``
or ``config``: a host's ``runtime`` alone is ~39 KB of sensor XML. ``retrieve_all`` follows the
ContinueRetrievePropertiesEx token a real vCenter pages with (100 objects by default); the
same filter spec then feeds WaitForUpdatesEx, whose changes ``Snapshot.apply`` folds in.
Values are kept decoded (bot/vsphere/hostprops.py): retrieval pages are byte-scanned
(bot/vsphere/soap_scan.py) and fall back to ElementTree only for answers the scanner declines.

Boot device (``detect_boot``), in order:
1. the disk under the OSDATA volume (VMFSOS / VMFS-L extent): its adapter (``mpx.vmhbaN:…``)
   decides the kind through the adapter's driver/model/type (``vmkusb`` → usb, SD in the model
   → sd, nvme → nvme, FC/iSCSI → san, SATADOM → satadom, other local controllers → disk);
   without a known adapter the disk name decides (``t10.NVMe``/``eui.`` → nvme, else disk);
2. no OSDATA extent (6.7 layout, or OSDATA in RAM) but BOOTBANK volumes and a USB/SD adapter →
   usb/sd via that adapter (the vfat bootbanks do not name their device in the API);
3. otherwise ``unknown`` with the reason.
Everything here is plain Python; no pyVmomi object passes through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.builds import BuildCatalog
from bot.model import BootDevice, BootKind, ConnectionState, FeatureFact, Host, PowerState
from bot.vsphere.features import (
    FEATURE_CLUSTER_PATHS,
    FEATURE_DATASTORE_PATHS,
    FEATURE_HOST_PATHS,
    host_features,
)
from bot.vsphere.hostprops import DECODERS, Adapter, Volume, from_data
from bot.vsphere.hostprops import FIELDS as FIELDS  # re-exported for collect.py
from bot.vsphere.soap import (
    MoRef,
    ObjectContent,
    PropertySet,
    RetrievePage,
    UpdateSet,
    continue_request,
    parse_retrieve,
    retrieve_request,
)
from bot.vsphere.soap_scan import Unsupported, scan_retrieve

HOST_PATHS = (
    "name",
    "parent",
    "summary.config.product.version",
    "summary.config.product.build",
    "summary.config.product.fullName",
    "hardware.systemInfo.vendor",
    "hardware.systemInfo.model",
    "hardware.systemInfo.serialNumber",
    "hardware.systemInfo.otherIdentifyingInfo",
    "config.storageDevice.hostBusAdapter",
    "config.network.pnic",
    "config.fileSystemVolume.mountInfo",
    "runtime.connectionState",
    "runtime.powerState",
    "runtime.inMaintenanceMode",
    "runtime.bootTime",
    "overallStatus",
    "configIssue",
    "vm",
    *FEATURE_HOST_PATHS,
)
PROPERTY_SETS = (
    PropertySet("HostSystem", HOST_PATHS),
    PropertySet("ComputeResource", ("name", "parent")),
    PropertySet("ClusterComputeResource", ("name", "parent", *FEATURE_CLUSTER_PATHS)),
    PropertySet("Folder", ("name", "parent")),
    PropertySet("Datacenter", ("name",)),
    PropertySet("Datastore", FEATURE_DATASTORE_PATHS),
)
PAGE_SIZE = 1000

Post = Callable[[bytes], bytes]  # one SOAP request → response body (raises SoapFault/OSError)
ReleaseLookup = Callable[[int], str | None]  # build → release name

_MPX = re.compile(r"^mpx\.(vmhba\d+):", re.IGNORECASE)
_SD_MODEL = re.compile(r"\bSD\b|SD ?card|IDSDM|SDHC|dual sd|\bBOSS-?S\d.*SD", re.IGNORECASE)
_SAN_DRIVERS = {"qlnativefc", "lpfc", "bnx2fc", "iscsi_vmk", "qfle3f", "elxiscsi", "nfnic"}


def release_lookup(catalog: BuildCatalog) -> ReleaseLookup:
    """Release names from the build catalog: 17867351 → "ESXi 7.0 Update 2a"."""

    def lookup(build: int) -> str | None:
        known = catalog.lookup(build)
        return known.name if known else None

    return lookup


def parse_page(payload: bytes) -> RetrievePage:
    """One retrieval page with every value decoded (``hostprops``): scanned, or parsed when the
    scanner declines the answer (a fault, unusual XML; see bot/vsphere/soap_scan.py)."""
    try:
        return scan_retrieve(payload, DECODERS)
    except Unsupported:
        page = parse_retrieve(payload, FIELDS)
    objects = tuple(
        ObjectContent(o.obj, {name: from_data(name, val) for name, val in o.props.items()})
        for o in page.objects
    )
    return RetrievePage(objects=objects, token=page.token)


def retrieve_all(post: Post, collector: MoRef, spec: str, page_size: int = PAGE_SIZE) -> list[ObjectContent]:
    """RetrievePropertiesEx, then ContinueRetrievePropertiesEx while vCenter hands out a token."""
    page = parse_page(post(retrieve_request(collector, spec, page_size)))
    objects = list(page.objects)
    while page.token:
        page = parse_page(post(continue_request(collector, page.token)))
        objects.extend(page.objects)
    return objects


class Snapshot:
    """The collected properties of every object by moref; owned by one thread at a time."""

    def __init__(self, objects: Iterable[ObjectContent] = (), *, adopt: bool = False) -> None:
        """With ``adopt`` the objects' property dicts are taken over instead of copied (a fresh
        retrieval that nothing else holds)."""
        self._props: dict[MoRef, dict[str, Any]] = (
            {o.obj: o.props for o in objects} if adopt else {o.obj: dict(o.props) for o in objects}
        )

    def __len__(self) -> int:
        return len(self._props)

    def apply(self, updates: UpdateSet) -> int:
        """Fold in one WaitForUpdatesEx answer; returns how many objects changed."""
        for update in updates.objects:
            if update.kind == "leave":
                self._props.pop(update.obj, None)
                continue
            props = {} if update.kind == "enter" else self._props.setdefault(update.obj, {})
            for name, op, val in update.changes:
                if op in ("remove", "indirectRemove"):
                    props.pop(name, None)
                else:
                    props[name] = from_data(name, val)
            self._props[update.obj] = props
        return len(updates.objects)

    def _name(self, ref: Any) -> str | None:
        props = self._props.get(ref) if isinstance(ref, MoRef) else None
        return props.get("name") if props else None

    def _placement(self, parent: Any) -> tuple[str | None, str | None]:
        """(datacenter, cluster) of a host whose parent is ``parent``."""
        cluster = (
            self._name(parent)
            if isinstance(parent, MoRef) and parent.type == "ClusterComputeResource"
            else None
        )
        ref = parent
        for _ in range(32):  # folders nest, but not forever
            if not isinstance(ref, MoRef) or ref.type == "Datacenter":
                break
            ref = (self._props.get(ref) or {}).get("parent")
        datacenter = self._name(ref) if isinstance(ref, MoRef) and ref.type == "Datacenter" else None
        return datacenter, cluster

    def _datastore_types(self, refs: Any) -> tuple[str, ...] | None:
        """The types (VMFS, NFS, VVOL, PMEM, …) of a host's datastores; None when not all are known."""
        if not isinstance(refs, tuple):
            return None
        types = tuple((self._props.get(ref) or {}).get("summary.type") for ref in refs)
        return None if any(t is None for t in types) else tuple(str(t) for t in types)

    def hosts(self, vcenter: str, release: ReleaseLookup | None = None) -> tuple[Host, ...]:
        out = []
        placements: dict[Any, tuple[str | None, str | None]] = {}  # by parent: few clusters, many hosts
        shared = _Shared(release, f"vcenter:{vcenter}")
        for ref, props in self._props.items():
            if ref.type == "HostSystem" and props.get("name"):
                parent = props.get("parent")
                if parent not in placements:
                    placements[parent] = self._placement(parent)
                datacenter, cluster = placements[parent]
                in_cluster = isinstance(parent, MoRef) and parent.type == "ClusterComputeResource"
                features = host_features(
                    props,
                    (self._props.get(parent) or {}) if in_cluster and isinstance(parent, MoRef) else None,
                    cluster,
                    self._datastore_types(props.get("datastore")),
                )
                out.append(host_from_props(props, vcenter, datacenter, cluster, release, shared, features))
        out.sort(key=lambda h: h.name.lower())
        return tuple(out)


class _Shared:
    """Values many hosts of one ``hosts()`` call have in common, made once: release names by
    build and driver maps by driver set (a fleet runs a few builds and hardware profiles)."""

    __slots__ = ("_drivers", "_release", "_releases", "source")

    def __init__(self, release: ReleaseLookup | None, source: str) -> None:
        self._release = release
        self._releases: dict[int, str | None] = {}
        self._drivers: dict[tuple[str, ...], Mapping[str, str]] = {}
        self.source = source

    def release(self, build: int | None) -> str | None:
        if self._release is None or build is None:
            return None
        if build not in self._releases:
            self._releases[build] = self._release(build)
        return self._releases[build]

    def drivers(self, names: set[str]) -> Mapping[str, str]:
        key = tuple(sorted(names))
        found = self._drivers.get(key)
        if found is None:
            found = self._drivers[key] = MappingProxyType(dict.fromkeys(key, ""))
        return found


def _text(props: Mapping[str, Any], path: str) -> str | None:
    val = props.get(path)
    return val.strip() or None if isinstance(val, str) else None


def _build(props: Mapping[str, Any]) -> int | None:
    text = _text(props, "summary.config.product.build")
    return int(text) if text and text.isdigit() else None


_SERIAL_KEYS = ("ServiceTag", "SerialNumberTag", "EnclosureSerialNumberTag")


def _serial(props: Mapping[str, Any]) -> str | None:
    serial = _text(props, "hardware.systemInfo.serialNumber")
    if serial:
        return serial
    for key, value in props.get("hardware.systemInfo.otherIdentifyingInfo") or ():
        if key in _SERIAL_KEYS and value.strip():
            return str(value).strip()
    return None


def _volumes(props: Mapping[str, Any]) -> tuple[Volume, ...]:
    volumes: tuple[Volume, ...] = props.get("config.fileSystemVolume.mountInfo") or ()
    return volumes


def _adapters(props: Mapping[str, Any]) -> dict[str, Adapter]:
    return {a.device: a for a in props.get("config.storageDevice.hostBusAdapter") or ()}


def _kind_of_adapter(hba: Adapter) -> tuple[BootKind, str]:
    driver, model = hba.driver.lower(), hba.model
    if driver in ("vmkusb", "usb-storage") or "usb" in model.lower():
        if _SD_MODEL.search(model):
            return BootKind.SD, f"adapter model {model!r} is an SD card reader"
        return BootKind.USB, f"adapter driver {driver or '?'} is USB storage"
    if _SD_MODEL.search(model):
        return BootKind.SD, f"adapter model {model!r} is an SD card reader"
    if "nvme" in driver:
        return BootKind.NVME, f"adapter driver {driver} is NVMe"
    if hba.type in ("HostFibreChannelHba", "HostInternetScsiHba", "HostFibreChannelOverEthernetHba"):
        return BootKind.SAN, f"adapter is {hba.type.removeprefix('Host')}"
    if driver in _SAN_DRIVERS:
        return BootKind.SAN, f"adapter driver {driver} is a SAN initiator"
    if "satadom" in model.lower():
        return BootKind.SATADOM, f"adapter model {model!r} is a SATADOM"
    return BootKind.DISK, f"adapter {hba.device} ({driver or 'unknown driver'}) is a local controller"


def detect_boot(props: Mapping[str, Any]) -> BootDevice:
    """Boot device from HBAs and the BOOTBANK/OSDATA volumes (rules in the module docstring)."""
    if "config.fileSystemVolume.mountInfo" not in props:
        return BootDevice(reason="vCenter reported no file system volumes for this host")
    volumes = _volumes(props)
    adapters = _adapters(props)
    osdata = [
        v.disks[0]
        for v in volumes
        if v.disks and (v.name.upper().startswith("OSDATA") or v.type.upper() in ("VMFSOS", "VMFS-L"))
    ]
    bootbanks = [v for v in volumes if v.name.upper().startswith("BOOTBANK")]
    if osdata:
        disk = osdata[0]
        match = _MPX.match(disk)
        hba = adapters.get(match.group(1)) if match else None
        if hba is not None:
            kind, why = _kind_of_adapter(hba)
            return BootDevice(kind, disk, hba.device, hba.driver or None, f"OSDATA is on {disk}; {why}")
        lowered = disk.lower()
        kind = BootKind.NVME if lowered.startswith(("t10.nvme", "eui.")) else BootKind.DISK
        return BootDevice(kind, disk, None, None, f"OSDATA is on {disk} (adapter not named by the device)")
    flash = [(d, h) for d, h in adapters.items() if _kind_of_adapter(h)[0] in (BootKind.USB, BootKind.SD)]
    if bootbanks and flash:
        device, hba = sorted(flash, key=lambda pair: pair[0])[0]
        kind, why = _kind_of_adapter(hba)
        reason = f"BOOTBANK volumes present and no OSDATA disk; {why} ({device})"
        return BootDevice(kind, None, device, hba.driver or None, reason)
    if not bootbanks:
        return BootDevice(reason="no BOOTBANK or OSDATA volume reported (stateless/PXE host?)")
    return BootDevice(
        reason="bootbank volumes do not name their device, no OSDATA disk and no USB/SD adapter"
    )


def bootbank_mounted(props: Mapping[str, Any]) -> bool | None:
    """True when every BOOTBANK volume is mounted and accessible; None when there is none."""
    states = [v.mounted and v.accessible for v in _volumes(props) if v.name.upper().startswith("BOOTBANK")]
    return all(states) if states else None


def _driver_names(props: Mapping[str, Any]) -> set[str]:
    names = {a.driver for a in props.get("config.storageDevice.hostBusAdapter") or () if a.driver}
    names.update(props.get("config.network.pnic") or ())
    return names


_CONNECTION = {state.value: state for state in ConnectionState}
_POWER = {state.value: state for state in PowerState}


def _connection(raw: Any) -> ConnectionState:
    return _CONNECTION.get(raw, ConnectionState.UNKNOWN) if isinstance(raw, str) else ConnectionState.UNKNOWN


def _power(raw: Any) -> PowerState:
    return _POWER.get(raw, PowerState.UNKNOWN) if isinstance(raw, str) else PowerState.UNKNOWN


def host_from_props(
    props: Mapping[str, Any],
    vcenter: str,
    datacenter: str | None = None,
    cluster: str | None = None,
    release: ReleaseLookup | None = None,
    shared: _Shared | None = None,
    features: Mapping[str, FeatureFact] | None = None,
) -> Host:
    """A ``Host`` from one host's decoded properties (``hostprops``)."""
    shared = shared or _Shared(release, f"vcenter:{vcenter}")
    build = _build(props)
    maintenance = props.get("runtime.inMaintenanceMode")
    boot_time = props.get("runtime.bootTime")
    return Host(
        name=str(props["name"]),
        build=build,
        version=_text(props, "summary.config.product.version"),
        release_name=shared.release(build),
        vcenter=vcenter,
        datacenter=datacenter,
        cluster=cluster,
        boot_device=detect_boot(props),
        bootbank_mounted=bootbank_mounted(props),
        vendor=_text(props, "hardware.systemInfo.vendor"),
        model=_text(props, "hardware.systemInfo.model"),
        serial=_serial(props),
        drivers=shared.drivers(_driver_names(props)),
        connection_state=_connection(props.get("runtime.connectionState")),
        power_state=_power(props.get("runtime.powerState")),
        in_maintenance=maintenance if isinstance(maintenance, bool) else None,
        boot_time=boot_time if isinstance(boot_time, datetime) else None,
        overall_status=_text(props, "overallStatus"),
        config_issues=tuple(props.get("configIssue") or ()),
        vm_count=props.get("vm") or 0,
        source=shared.source,
        features=features if features is not None else host_features(props, None, None, None),
    )
