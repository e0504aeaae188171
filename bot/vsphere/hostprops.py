"""The inventory's property values, one decoded form per path, from either parser.

Every path in ``inventory.HOST_PATHS`` keeps one compact value in a ``Snapshot``: text for
scalars, a ``MoRef`` for ``parent``, ``Volume``/``Adapter`` records for the storage arrays, a
count for ``vm``. Two routes lead there and must agree (tests/test_vsphere_inventory.py
checks that they do on recorded and simulated answers):
- ``DECODERS``: straight from the answer's bytes (``scan.scan_retrieve``, the refresh path);
- ``from_data``: from what ``soap.value`` made of an ElementTree element (WaitForUpdatesEx, and
  the refresh when the scanner declines an answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.vsphere.soap import Data, MoRef, as_list
from bot.vsphere.soap_scan import Decoder, Span, attribute, children, find, leaf, tag, text, xsi_type

# Data-object fields ``from_data`` reads; ElementTree conversion skips everything else.
FIELDS = frozenset(
    {
        "device", "driver", "model", "volume", "mountInfo", "name", "type", "extent", "diskName",
        "mounted", "accessible", "fullFormattedMessage", "message",
        "identifierValue", "identifierType", "key", "sriovEnabled", "nsxtEnabled",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Volume:
    """One entry of ``config.fileSystemVolume.mountInfo``."""

    name: str
    type: str
    mounted: bool
    accessible: bool
    disks: tuple[str, ...]  # extent disk names (VMFS, VMFS-L/OSDATA); empty for vfat/NFS


@dataclass(frozen=True, slots=True)
class Adapter:
    """One entry of ``config.storageDevice.hostBusAdapter``; ``type`` is its vim type."""

    device: str
    driver: str
    model: str
    type: str


def _flag(raw: Any, default: bool) -> bool:
    """xsd:boolean inside a data object: "true"/"false" as text (or a bool from a typed val)."""
    if isinstance(raw, bool):
        return raw
    return raw.strip() == "true" if isinstance(raw, str) else default


def parse_time(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


_ACCESSIBLE = tag(b"accessible")
_DEVICE = tag(b"device")
_DISKNAME = tag(b"diskName")
_DRIVER = tag(b"driver")
_FULLFORMATTEDMESSAGE = tag(b"fullFormattedMessage")
_IDENTIFIERVALUE = tag(b"identifierValue")
_KEY = tag(b"key")
_MESSAGE = tag(b"message")
_MODEL = tag(b"model")
_MOUNTED = tag(b"mounted")
_NAME = tag(b"name")
_TYPE = tag(b"type")
_SRIOVENABLED = tag(b"sriovEnabled")


# --- from bytes ------------------------------------------------------------------------------


def _b_bool(buf: bytes, val: Span) -> bool | None:
    raw = text(buf, val).strip()
    return raw == "true" if raw in ("true", "false") else None


def _b_time(buf: bytes, val: Span) -> datetime | None:
    return parse_time(text(buf, val))


def _b_ref(buf: bytes, val: Span) -> MoRef:
    return MoRef(attribute(buf, val, b' type="') or "", text(buf, val))


_TAG_END = frozenset(b" \t\r\n/>")


def boot_volume(name: str, kind: str) -> bool:
    """Volumes the boot-device rules read: BOOTBANK*, OSDATA* and VMFS-L/VMFSOS (not datastores)."""
    upper = name.upper()
    return upper.startswith(("BOOTBANK", "OSDATA")) or kind.upper() in ("VMFSOS", "VMFS-L")


def _b_volumes(buf: bytes, val: Span) -> tuple[Volume, ...]:
    # A HostFileSystemMountInfo holds a HostMountInfo (path, accessMode, mounted, accessible, …)
    # then the volume (type, name, …, extents with diskName): no field name is in both, so the
    # first <mounted>, <name>, … of an entry are the ones wanted, found without walking it.
    out = []
    for item in children(buf, b"HostFileSystemMountInfo", val[1], val[2]):
        start, end = item[1], item[2]
        name = leaf(buf, _NAME, start, end) or ""
        kind = leaf(buf, _TYPE, start, end) or ""
        if not boot_volume(name, kind):
            continue
        disks = []
        at = buf.find(b"<diskName", start, end)
        while at >= 0:
            disk = leaf(buf, _DISKNAME, at, end) if buf[at + 9] in _TAG_END else None
            if disk:
                disks.append(disk)
            at = buf.find(b"<diskName", at + 9, end)
        mounted = _flag(leaf(buf, _MOUNTED, start, end), True)
        accessible = _flag(leaf(buf, _ACCESSIBLE, start, end), True)
        out.append(Volume(name, kind, mounted, accessible, tuple(disks)))
    return tuple(out)


def _b_adapters(buf: bytes, val: Span) -> tuple[Adapter, ...]:
    out = []
    for item in children(buf, b"HostHostBusAdapter", val[1], val[2]):
        device = leaf(buf, _DEVICE, item[1], item[2])
        if device:
            driver, model = (
                leaf(buf, _DRIVER, item[1], item[2]) or "",
                leaf(buf, _MODEL, item[1], item[2]) or "",
            )
            out.append(Adapter(device, driver, model, xsi_type(buf, item)))
    return tuple(out)


def _b_nic_drivers(buf: bytes, val: Span) -> tuple[str, ...]:
    # ``driver`` is a direct field of PhysicalNic and of none of its nested types, so every
    # <driver> in the array is one NIC's: read them all without walking the NICs.
    out = []
    at = buf.find(b"<driver", val[1], val[2])
    while at >= 0:
        if buf[at + 7] in _TAG_END:  # not <driverVersion>
            driver = leaf(buf, _DRIVER, at, val[2])
            if driver:
                out.append(driver)
        at = buf.find(b"<driver", at + 7, val[2])
    return tuple(out)


def _b_issues(buf: bytes, val: Span) -> tuple[str, ...]:
    return tuple(
        leaf(buf, _FULLFORMATTEDMESSAGE, event[1], event[2])
        or leaf(buf, _MESSAGE, event[1], event[2])
        or xsi_type(buf, event)
        for event in children(buf, b"Event", val[1], val[2])
    )


def _b_identifiers(buf: bytes, val: Span) -> tuple[tuple[str, str], ...]:
    out = []
    for info in children(buf, b"HostSystemIdentificationInfo", val[1], val[2]):
        kind = find(buf, b"identifierType", info[1], info[2])
        key = leaf(buf, _KEY, kind[1], kind[2]) if kind else None
        out.append((key or "", leaf(buf, _IDENTIFIERVALUE, info[1], info[2]) or ""))
    return tuple(out)


def _b_count(buf: bytes, val: Span) -> int:
    return buf.count(b"<ManagedObjectReference", val[1], val[2])


def _b_refs(buf: bytes, val: Span) -> tuple[MoRef, ...]:
    return tuple(
        MoRef(attribute(buf, ref, b' type="') or "", text(buf, ref))
        for ref in children(buf, b"ManagedObjectReference", val[1], val[2])
    )


def _b_sriov(buf: bytes, val: Span) -> bool:
    return any(
        leaf(buf, _SRIOVENABLED, item[1], item[2]) == "true"
        for item in children(buf, b"HostPciPassthruInfo", val[1], val[2])
    )


def _b_nsxt(buf: bytes, val: Span) -> bool:
    return buf.find(b"<nsxtEnabled>true</nsxtEnabled>", val[1], val[2]) >= 0


def _b_switches(buf: bytes, val: Span) -> int:
    return sum(1 for _ in children(buf, b"HostOpaqueSwitch", val[1], val[2]))


# --- from ElementTree values (soap.value) ------------------------------------------------------


def _d_volumes(raw: Any) -> tuple[Volume, ...]:
    out = []
    for mount in as_list(raw):
        if not isinstance(mount, Data) or not isinstance(mount.get("volume"), Data):
            continue
        volume, info = mount["volume"], mount.get("mountInfo")
        name, kind = str(volume.get("name", "")), str(volume.get("type", ""))
        if not boot_volume(name, kind):
            continue
        info = info if isinstance(info, Data) else Data("HostMountInfo")
        disks = tuple(
            str(e["diskName"])
            for e in as_list(volume.get("extent"))
            if isinstance(e, Data) and e.get("diskName")
        )
        out.append(
            Volume(
                name,
                kind,
                _flag(info.get("mounted"), True),
                _flag(info.get("accessible"), True),
                disks,
            )
        )
    return tuple(out)


def _d_adapters(raw: Any) -> tuple[Adapter, ...]:
    return tuple(
        Adapter(str(h["device"]), str(h.get("driver", "")), str(h.get("model", "")), h.type)
        for h in as_list(raw)
        if isinstance(h, Data) and h.get("device")
    )


def _d_nic_drivers(raw: Any) -> tuple[str, ...]:
    return tuple(str(n["driver"]) for n in as_list(raw) if isinstance(n, Data) and n.get("driver"))


def _d_issues(raw: Any) -> tuple[str, ...]:
    return tuple(
        str(i.get("fullFormattedMessage") or i.get("message") or i.type)
        for i in as_list(raw)
        if isinstance(i, Data)
    )


def _d_identifiers(raw: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for info in as_list(raw):
        if isinstance(info, Data):
            kind = info.get("identifierType")
            key = kind.get("key") if isinstance(kind, Data) else None
            out.append((str(key or ""), str(info.get("identifierValue") or "")))
    return tuple(out)


def _d_sriov(raw: Any) -> bool:
    return any(isinstance(d, Data) and _flag(d.get("sriovEnabled"), False) for d in as_list(raw))


def _d_nsxt(raw: Any) -> bool:
    return any(isinstance(d, Data) and _flag(d.get("nsxtEnabled"), False) for d in as_list(raw))


def _d_bool(raw: Any) -> bool | None:
    return raw if isinstance(raw, bool) else None


def _d_time(raw: Any) -> datetime | None:
    return raw if isinstance(raw, datetime) else None


_STRUCTURED: dict[str, tuple[Decoder, Callable[[Any], Any]]] = {
    "hardware.systemInfo.otherIdentifyingInfo": (_b_identifiers, _d_identifiers),
    "config.storageDevice.hostBusAdapter": (_b_adapters, _d_adapters),
    "config.network.pnic": (_b_nic_drivers, _d_nic_drivers),
    "config.fileSystemVolume.mountInfo": (_b_volumes, _d_volumes),
    "runtime.inMaintenanceMode": (_b_bool, _d_bool),
    "runtime.bootTime": (_b_time, _d_time),
    "configIssue": (_b_issues, _d_issues),
    "vm": (_b_count, lambda raw: len(as_list(raw))),
    "parent": (_b_ref, lambda raw: raw),
    # feature facts (bot/vsphere/features.py)
    "config.vsanHostConfig.enabled": (_b_bool, _d_bool),
    "summary.config.vmotionEnabled": (_b_bool, _d_bool),
    "config.pciPassthruInfo": (_b_sriov, _d_sriov),
    "config.network.opaqueSwitch": (_b_switches, lambda raw: len(as_list(raw))),
    "config.network.proxySwitch": (_b_nsxt, _d_nsxt),
    "datastore": (_b_refs, lambda raw: tuple(r for r in as_list(raw) if isinstance(r, MoRef))),
    "configuration.dasConfig.enabled": (_b_bool, _d_bool),
    "configuration.drsConfig.enabled": (_b_bool, _d_bool),
}
TEXT_PATHS = (
    "name",
    "summary.config.product.version",
    "summary.config.product.build",
    "summary.config.product.fullName",
    "hardware.systemInfo.vendor",
    "hardware.systemInfo.model",
    "hardware.systemInfo.serialNumber",
    "runtime.connectionState",
    "runtime.powerState",
    "overallStatus",
    "summary.type",
)
DECODERS: dict[str, Decoder] = {
    **dict.fromkeys(TEXT_PATHS, text),
    **{path: pair[0] for path, pair in _STRUCTURED.items()},
}


def from_data(path: str, raw: Any) -> Any:
    """The decoded form of ``raw`` (a ``soap.value`` result) for ``path``; None stays None."""
    if raw is None:
        return None
    pair = _STRUCTURED.get(path)
    if pair is not None:
        return pair[1](raw)
    return str(raw) if path in TEXT_PATHS and not isinstance(raw, str) else raw
