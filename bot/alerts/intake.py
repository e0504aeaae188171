"""What the alert engine takes in: ``Signal`` (one observation about a host) and its settings.

Signals come from the syslog receiver and log scan (``signal_from_log``), from the vCenter watcher
(events, config issues, connection and bootbank mount state) and from tests. ``kind`` is the alert
kind; ``clear`` says the condition is over (bootbank mounted again, host reconnected).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.alerts.patterns import SignalKind
from bot.alerts.signals import LogSignal
from bot.model import Severity
from bot.schema import Duration, parse


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
    """The ``alerts`` section."""

    group_wait: Duration = timedelta(seconds=30)
    recheck: Duration = timedelta(seconds=60)  # how often muted alerts look again
    topic: str = "alerts"
    forward_to: tuple[str, ...] = ()  # pager conversations, e.g. "pagerduty:default", "webhook:ops"

    @classmethod
    def from_extra(cls, raw: Any) -> EngineConfig:
        """From ``settings.extra["alerts"]``; ``ConfigError`` names the key."""
        return parse(cls, raw, "alerts")
