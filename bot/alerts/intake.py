"""What the alert engine takes in: ``Signal`` (one observation about a host) and its settings.

Signals come from the syslog receiver and log scan (``signal_from_log``), from the vCenter watcher
(events, config issues, connection and bootbank mount state) and from tests. ``kind`` is the alert
kind; ``clear`` says the condition is over (bootbank mounted again, host reconnected).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.alerts.labels import DEFAULT_GROUP_BY, check_label
from bot.alerts.patterns import SignalKind
from bot.alerts.signals import LogSignal
from bot.model import Severity
from bot.schema import ConfigError, Duration, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation about a host: ``kind`` is the alert kind; ``clear`` says the condition is over."""

    host: str
    kind: str  # "bootbank-loss", "boot-device-precursor", "host-not-responding", …
    clear: bool = False
    source: str = ""  # "syslog:udp:10.0.0.5", "vcenter:vc1:event:4711", …
    detail: str = ""  # the log line or event message
    device: str | None = None
    severity: Severity | None = None  # None: the kind's default
    labels: tuple[tuple[str, str], ...] = ()  # labels the source knows (a vCenter-wide alert's vcenter)


_LOG_KINDS = {
    SignalKind.PRECURSOR: "boot-device-precursor",
    SignalKind.LOSS: "bootbank-loss",
    SignalKind.CORRUPTION: "boot-device-corruption",
}


def signal_from_log(sig: LogSignal) -> Signal | None:
    """The engine's signal for a log signal; None when the line's host is unknown."""
    if not sig.host:
        return None
    source = f"syslog:{sig.source}" if sig.source else "syslog"
    if sig.kind is SignalKind.RECOVERY:
        return Signal(sig.host, "bootbank-loss", clear=True, source=source, detail=sig.line[:500])
    return Signal(
        sig.host,
        _LOG_KINDS[sig.kind],
        source=source,
        detail=sig.line[:500],
        device=sig.device,
        severity=sig.severity,
    )


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The ``alerts`` section; the grouping keys mean what they mean in Alertmanager.

    ``pending_for`` (config key ``for``): how long a condition must hold before its alert fires.
    ``group_by``: the labels whose values make the group key. ``group_wait``: how long a new group
    collects alerts before its first page. ``group_interval``: how often an open group's page shows
    hosts joining or recovering. ``repeat_interval``: how often an unacknowledged group is re-paged
    after its escalation chain ran out (None: the on-call policy's ``repeat``).
    """

    pending_for: Duration = timedelta(seconds=30)
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    group_wait: Duration = timedelta(seconds=10)
    group_interval: Duration = timedelta(minutes=1)
    repeat_interval: Duration | None = None
    recheck: Duration = timedelta(seconds=60)  # how often muted alerts look again
    topic: str = "alerts"
    forward_to: tuple[str, ...] = ()  # pager conversations, e.g. "pagerduty:default", "webhook:ops"
    inhibit_rule_files: tuple[str, ...] = ()

    @classmethod
    def from_extra(cls, raw: Any) -> EngineConfig:
        """From ``settings.extra["alerts"]``; ``ConfigError`` names the key. ``for`` is the pending
        period; a section with ``group_wait`` and no ``for`` is read the way it was before alert groups
        (``group_wait`` as ``for``), with a deprecation warning."""
        section = dict(raw) if isinstance(raw, Mapping) else raw
        given = "for"  # the key the user wrote for the pending period, named in errors
        if isinstance(section, dict):
            if "for" in section:
                section["pending_for"] = section.pop("for")
            elif "group_wait" in section:
                given = "group_wait"
                section["pending_for"] = section.pop("group_wait")
            if isinstance(section.get("group_by"), str):
                section["group_by"] = [section["group_by"]]
        try:
            config = parse(cls, section, "alerts")
        except ConfigError as exc:
            if exc.path == "alerts.pending_for":
                raise ConfigError(f"alerts.{given}", exc.problem, exc.file) from None
            raise
        if given == "group_wait":
            log.warning(
                "alerts.group_wait is read as alerts.for (the time a condition must hold before it "
                "fires), its meaning before alert groups; rename it to 'for' (and set group_wait "
                "for the grouping wait)"
            )
        return config

    def __post_init__(self) -> None:
        if not self.group_by:
            raise ValueError("group_by: expected a list of labels")
        for name in self.group_by:
            check_label(name, "group_by")
