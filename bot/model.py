"""Domain values shared by every part of esxbot: hosts, releases, fixes, matches, alerts, jobs.

Everything here is a frozen, slotted dataclass or a StrEnum, so values can cross threads, modules and
the database boundary without surprises. Unknown facts are ``None`` (or ``BootKind.UNKNOWN``), never
``False``: the matcher must be able to tell "not USB" from "we do not know".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


class BootKind(StrEnum):
    """What the host boots ESXi from; USB and SD are the media that lose their bootbank."""

    USB = "usb"
    SD = "sd"
    SATADOM = "satadom"
    DISK = "disk"
    SSD = "ssd"
    NVME = "nvme"
    SAN = "san"
    PXE = "pxe"
    UNKNOWN = "unknown"

    @property
    def is_flash_media(self) -> bool:
        """USB sticks and SD cards: small queue depth, low endurance, prone to bootbank loss."""
        return self in (BootKind.USB, BootKind.SD)


@dataclass(frozen=True, slots=True)
class BootDevice:
    """The boot device as far as it is known, with how we know it."""

    kind: BootKind = BootKind.UNKNOWN
    device: str | None = None  # e.g. "mpx.vmhba32:C0:T0:L0"
    adapter: str | None = None  # e.g. "vmhba32"
    driver: str | None = None  # e.g. "vmkusb"
    reason: str | None = None  # why the kind is what it is (or why it is unknown)

    def describe(self) -> str:
        """One line for people: ``usb (mpx.vmhba32:C0:T0:L0, vmhba32, vmkusb)``."""
        details = [d for d in (self.device, self.adapter, self.driver) if d]
        return f"{self.kind.value} ({', '.join(details)})" if details else self.kind.value


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    NOT_RESPONDING = "notResponding"
    UNKNOWN = "unknown"


class PowerState(StrEnum):
    POWERED_ON = "poweredOn"
    POWERED_OFF = "poweredOff"
    STANDBY = "standBy"
    UNKNOWN = "unknown"


FEATURES = ("vsan", "ha", "drs", "iscsi", "fcoe", "sriov", "pmem", "vvols", "nsx", "vmotion", "rdm", "nvmeof")


@dataclass(frozen=True, slots=True)
class FeatureFact:
    """Whether a host uses one of ``FEATURES``, and where that was learnt (a phrase a person can check)."""

    present: bool
    source: str  # "the inventory file's features list", "vCenter: cluster prod-a has HA enabled"


def _no_features() -> Mapping[str, FeatureFact]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Host:
    """One ESXi host, from vCenter or from a static inventory file.

    ``drivers`` maps driver name to version ("" when the version is unknown); ``features`` holds the
    known ones of ``FEATURES`` (a feature not in it is unknown); ``extra`` keeps fields of the
    inventory file that esxbot does not know, so nothing a user wrote is lost.
    """

    name: str
    build: int | None = None
    version: str | None = None  # "7.0.2"
    release_name: str | None = None  # "ESXi 7.0 Update 2a", from the build catalog
    vcenter: str | None = None
    datacenter: str | None = None
    cluster: str | None = None
    boot_device: BootDevice = field(default_factory=BootDevice)
    bootbank_mounted: bool | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    drivers: Mapping[str, str] = field(default_factory=_empty_map)
    tags: frozenset[str] = frozenset()
    connection_state: ConnectionState = ConnectionState.UNKNOWN
    power_state: PowerState = PowerState.UNKNOWN
    in_maintenance: bool | None = None
    boot_time: datetime | None = None
    overall_status: str | None = None  # green / yellow / red / gray
    config_issues: tuple[str, ...] = ()
    vm_count: int | None = None
    address: str | None = None  # management IP, used to map syslog sources to hosts
    source: str = "static"  # "static", "vcenter:<name>", "demo"
    extra: Mapping[str, Any] = field(default_factory=_empty_map)
    features: Mapping[str, FeatureFact] = field(default_factory=_no_features)
    ad_joined: bool | None = None  # joined to Active Directory (advisories: CVE-2024-37085)
    usb_controller_vms: tuple[str, ...] | None = None  # VMs with a USB controller (VMSA-2024-0006)


@dataclass(frozen=True, slots=True)
class Fix:
    """One resolved issue of a release: a PR number and what the notes say about it."""

    pr: str  # digits only, e.g. "2777003"
    title: str
    text: str = ""
    component: str | None = None  # category heading, e.g. "Storage Issues"
    cves: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Release:
    """An ESXi release: one build of one product line, with its fixes when the notes were read."""

    line: str  # product line, "7.0"
    name: str  # "ESXi 7.0 Update 2c"
    build: int
    release_date: date | None = None
    iso_build: int | None = None
    version: str | None = None  # "7.0.2"
    notes_url: str | None = None
    image_profiles: tuple[str, ...] = ()
    bulletins: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()


class Verdict(StrEnum):
    AFFECTED = "affected"
    POSSIBLY_AFFECTED = "possibly-affected"
    NOT_AFFECTED = "not-affected"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict of one fix on one host, with sentences a person can check."""

    pr: str
    host: str
    verdict: Verdict
    reasons: tuple[str, ...]
    release: str | None = None
    build: int | None = None


class AlertState(StrEnum):
    PENDING = "pending"  # seen, inside group_wait: nobody paged yet
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert per (host, kind); the database enforces that only one is open at a time."""

    id: int
    host: str
    kind: str  # "bootbank-loss", "boot-device-precursor", "host-not-responding", ...
    state: AlertState
    severity: Severity
    summary: str
    first_seen: datetime
    last_seen: datetime
    sources: tuple[str, ...] = ()
    escalation_step: int = 0
    acked_by: str | None = None
    resolved_at: datetime | None = None


class JobState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class JobStep:
    name: str
    host: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    result: str | None = None  # "ok", "failed: …", "skipped: …"


@dataclass(frozen=True, slots=True)
class Job:
    """A patch/shutdown/reboot/maintenance run and where it stands."""

    id: int
    kind: str  # "patch", "shutdown", "reboot", "maintenance", "power-on"
    state: JobState
    requested_by: str
    targets: tuple[str, ...]
    steps: tuple[JobStep, ...] = ()
    current_step: int = 0
    confirmed_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def host_to_dict(host: Host) -> dict[str, Any]:
    """The stable JSON shape of a host (``say --json``, ``inventory dump --json``)."""
    return {
        "name": host.name,
        "vcenter": host.vcenter,
        "datacenter": host.datacenter,
        "cluster": host.cluster,
        "version": host.version,
        "build": host.build,
        "release_name": host.release_name,
        "boot_device": {
            "kind": host.boot_device.kind.value,
            "device": host.boot_device.device,
            "adapter": host.boot_device.adapter,
            "driver": host.boot_device.driver,
            "reason": host.boot_device.reason,
        },
        "bootbank_mounted": host.bootbank_mounted,
        "vendor": host.vendor,
        "model": host.model,
        "serial": host.serial,
        "drivers": dict(host.drivers),
        "tags": sorted(host.tags),
        "connection_state": host.connection_state.value,
        "power_state": host.power_state.value,
        "in_maintenance": host.in_maintenance,
        "boot_time": host.boot_time.isoformat() if host.boot_time else None,
        "overall_status": host.overall_status,
        "config_issues": list(host.config_issues),
        "vm_count": host.vm_count,
        "address": host.address,
        "source": host.source,
        "features": {
            name: {"present": fact.present, "source": fact.source}
            for name, fact in sorted(host.features.items())
        },
        "ad_joined": host.ad_joined,
        "usb_controller_vms": None if host.usb_controller_vms is None else list(host.usb_controller_vms),
    }
