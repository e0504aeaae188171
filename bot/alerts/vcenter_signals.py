"""vCenter facts → alert signals: event rules as data, and host-state changes (mount, connection, issues).

There is no dedicated vCenter event for a lost bootbank: ESXi raises "Bootbank cannot be found at path
'/bootbank'" as a general host error (shown by the default "Host error" alarm) and the host carries a
config issue "Lost connectivity to the device … backing the boot filesystem". Storage events (lost
connectivity, All Paths Down, permanent device loss) are precursors only when they name the host's
boot device: the same event on a SAN LUN is not a bootbank problem.

``event_signals`` maps one event (already turned into a ``VCenterEvent`` by the collector loop);
``StateTracker.update`` diffs host snapshots from the inventory watch and says what changed. Its first
snapshot also emits *clear* signals, so a condition that ended while the bot was down resolves (the
engine ignores clears without an open alert, and re-reported conditions only refresh open alerts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.alerts.intake import Signal
from bot.alerts.patterns import is_boot_device
from bot.model import ConnectionState, Host
from bot.vsphere.events import VCenterEvent

_DEVICE = re.compile(
    r"\b(mpx\.vmhba\d+:C\d+:T\d+:L\d+|naa\.[0-9a-fA-F]{8,}|t10\.[^\s\"')]+|eui\.[0-9a-fA-F]+)"
)
_BOOTBANK_MISSING = re.compile(r"Bootbank cannot be found at path", re.IGNORECASE)
_BOOT_FS_LOST = re.compile(
    r"Lost connectivity to the device (\S+) backing the boot filesystem", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class EventRule:
    id: str
    kind: str  # the alert kind it raises or clears
    clear: bool = False
    types: frozenset[str] = frozenset()  # class names or eventTypeIds; empty: any
    text: re.Pattern[str] | None = None
    boot_device_only: bool = False  # the event must name the host's boot device


EVENT_RULES: tuple[EventRule, ...] = (
    EventRule("bootbank-missing", "bootbank-loss", text=_BOOTBANK_MISSING),
    EventRule("boot-filesystem-lost", "bootbank-loss", text=_BOOT_FS_LOST),
    EventRule(
        "boot-device-lost",
        "boot-device-precursor",
        types=frozenset(
            {
                "esx.problem.storage.connectivity.lost",
                "esx.problem.storage.apd.start",
                "esx.problem.storage.apd.timeout",
                "esx.problem.scsi.device.state.permanentloss",
                "esx.problem.vmfs.heartbeat.timedout",
            }
        ),
        boot_device_only=True,
    ),
    EventRule(
        "boot-device-back",
        "boot-device-precursor",
        clear=True,
        types=frozenset({"esx.clear.storage.connectivity.restored", "esx.clear.storage.apd.exit"}),
        boot_device_only=True,
    ),
    EventRule("host-lost", "host-not-responding", types=frozenset({"HostConnectionLostEvent"})),
    EventRule(
        "host-back",
        "host-not-responding",
        clear=True,
        types=frozenset({"HostReconnectionEvent", "HostConnectedEvent"}),
    ),
)


def event_signals(
    vcenter: str, event: VCenterEvent, host: Host | None, rules: Sequence[EventRule] = EVENT_RULES
) -> list[Signal]:
    """The signals in one event (one per alert kind, first rule wins); none without a host name."""
    name = host.name if host else event.host
    if not name:
        return []
    found: dict[tuple[str, bool], Signal] = {}
    for rule in rules:
        if rule.types and event.type not in rule.types and event.event_type_id not in rule.types:
            continue
        if rule.text is not None and not rule.text.search(event.message):
            continue
        m = _DEVICE.search(event.message)
        device = m.group(1) if m else None
        if rule.boot_device_only and not is_boot_device(device, host):
            continue
        found.setdefault(
            (rule.kind, rule.clear),
            Signal(
                name,
                rule.kind,
                clear=rule.clear,
                source=f"vcenter:{vcenter}:event:{event.key}",
                detail=f"{event.event_type_id or event.type}: {event.message}"[:500],
                device=device,
            ),
        )
    return list(found.values())


def _boot_issue(host: Host) -> str | None:
    for issue in host.config_issues:
        if _BOOTBANK_MISSING.search(issue) or _BOOT_FS_LOST.search(issue):
            return issue
    return None


def _conditions(host: Host) -> dict[str, str | None]:
    """Alert kind → detail when the condition holds, None when it is known not to hold."""
    issue = _boot_issue(host)
    out: dict[str, str | None] = {}
    if host.bootbank_mounted is False or issue:
        out["bootbank-loss"] = issue or "the bootbank volume is not mounted"
    elif host.bootbank_mounted is True:
        out["bootbank-loss"] = None
    if host.connection_state is ConnectionState.NOT_RESPONDING:
        out["host-not-responding"] = "vCenter reports the host as not responding"
    elif host.connection_state is ConnectionState.CONNECTED:
        out["host-not-responding"] = None
    return out


class StateTracker:
    """Remembers each host's last conditions and turns changes into signals."""

    def __init__(self, vcenter: str) -> None:
        self.vcenter = vcenter
        self._last: dict[str, dict[str, str | None]] = {}

    def update(self, hosts: Iterable[Host]) -> list[Signal]:
        signals: list[Signal] = []
        for host in hosts:
            now = _conditions(host)
            before: Mapping[str, str | None] = self._last.get(host.name, {})
            first = host.name not in self._last
            for kind, detail in now.items():
                if not first and kind in before and (before[kind] is None) == (detail is None):
                    continue
                signals.append(
                    Signal(
                        host.name,
                        kind,
                        clear=detail is None,
                        source=f"vcenter:{self.vcenter}:state",
                        detail=detail or f"{kind} condition cleared",
                        device=host.boot_device.device if kind == "bootbank-loss" else None,
                    )
                )
            self._last[host.name] = now
        return signals
