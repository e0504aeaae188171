"""Turn parsed log lines into boot-device signals: the rules' hits that concern the host's boot device.

Shared by the syslog receiver and ``esxbot logs scan``, so both see exactly the same signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.alerts.logline import LogLine
from bot.alerts.patterns import LogRuleSet, RuleHit, Scope, SignalKind, is_boot_device
from bot.model import Host, Severity


@dataclass(frozen=True, slots=True)
class LogSignal:
    """One boot-device signal from one log line; ``host`` is the inventory name when known."""

    host: str | None
    kind: SignalKind
    device: str | None
    time: datetime | None
    line: str
    rule: str
    severity: Severity
    source: str = ""  # where it came from: "udp:10.0.0.5", "tcp:10.0.0.5", "path:lineno"
    app: str | None = None

    def as_json(self) -> dict[str, str | None]:
        """The ``logs scan --json`` shape, plus rule and severity."""
        return {
            "host": self.host,
            "kind": self.kind.value,
            "device": self.device,
            "time": format_time(self.time) if self.time else None,
            "line": self.line,
            "rule": self.rule,
            "severity": self.severity.value,
        }


def format_time(when: datetime) -> str:
    """``2021-05-17T03:53:57.655Z``: UTC, milliseconds only when the source had a fraction."""
    spec = "milliseconds" if when.microsecond else "seconds"
    return when.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def detect(
    rules: LogRuleSet,
    line: LogLine,
    *,
    host: Host | None,
    host_name: str | None,
    text: str,
    source: str = "",
) -> list[LogSignal]:
    """The signals in one parsed line (see ``from_hits``). ``text`` is the line as shown to people."""
    hits = rules.match(line.message)
    if not hits:
        return []
    return from_hits(hits, line, host=host, host_name=host_name, text=text, source=source)


def from_hits(
    hits: list[RuleHit],
    line: LogLine,
    *,
    host: Host | None,
    host_name: str | None,
    text: str,
    source: str = "",
) -> list[LogSignal]:
    """The hits that concern the boot device, one signal per kind (the first rule wins)."""
    signals: list[LogSignal] = []
    kinds: set[SignalKind] = set()
    for hit in hits:
        if hit.rule.kind in kinds:
            continue
        if hit.rule.scope is Scope.BOOT and not is_boot_device(hit.device, host):
            continue
        kinds.add(hit.rule.kind)
        signals.append(
            LogSignal(
                host=host_name,
                kind=hit.rule.kind,
                device=hit.device,
                time=line.time,
                line=text,
                rule=hit.rule.id,
                severity=hit.rule.severity,
                source=source,
                app=line.app,
            )
        )
    return signals
