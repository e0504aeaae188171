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
from bot.durations import parse_duration
from bot.model import Severity

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

    pending_for: timedelta = timedelta(seconds=30)
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    group_wait: timedelta = timedelta(seconds=10)
    group_interval: timedelta = timedelta(minutes=1)
    repeat_interval: timedelta | None = None
    recheck: timedelta = timedelta(seconds=60)  # how often muted alerts look again
    topic: str = "alerts"
    forward_to: tuple[str, ...] = ()  # pager conversations, e.g. "pagerduty:default", "webhook:ops"
    inhibit_rule_files: tuple[str, ...] = ()

    @classmethod
    def from_extra(cls, raw: Any) -> EngineConfig:
        """From ``settings.extra["alerts"]``; see the class docstring and README's alerts table."""
        section: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}

        def duration(name: str, default: timedelta) -> timedelta:
            value = section.get(name)
            if value is None:
                return default
            if isinstance(value, int | float):
                return timedelta(seconds=float(value))
            try:
                return parse_duration(str(value))
            except ValueError:
                raise ValueError(f"alerts.{name}: {value!r} is not a duration") from None

        default = cls()
        group_wait = duration("group_wait", default.group_wait)
        if "for" in section:
            pending_for = duration("for", default.pending_for)
        elif "group_wait" in section:
            log.warning(
                "alerts.group_wait is read as alerts.for (the time a condition must hold before it "
                "fires), its meaning before alert groups; rename it to 'for' (and set group_wait "
                "for the grouping wait)"
            )
            pending_for, group_wait = group_wait, default.group_wait
        else:
            pending_for = default.pending_for
        group_by = section.get("group_by", list(default.group_by))
        if isinstance(group_by, str):
            group_by = [group_by]
        if not isinstance(group_by, list | tuple) or not group_by:
            raise ValueError("alerts.group_by: expected a list of labels")
        for name in group_by:
            check_label(str(name), "alerts.group_by")
        repeat = section.get("repeat_interval")
        forward = section.get("forward_to") or []
        files = section.get("inhibit_rule_files") or []
        return cls(
            pending_for=pending_for,
            group_by=tuple(str(n) for n in group_by),
            group_wait=group_wait,
            group_interval=duration("group_interval", default.group_interval),
            repeat_interval=None if repeat is None else duration("repeat_interval", timedelta()),
            recheck=duration("recheck", default.recheck),
            topic=str(section.get("topic", default.topic)),
            forward_to=tuple(str(f) for f in (forward if isinstance(forward, list | tuple) else [forward])),
            inhibit_rule_files=tuple(str(f) for f in (files if isinstance(files, list | tuple) else [files])),
        )
