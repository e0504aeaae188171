"""Offline triage: run the syslog rules over saved ESXi log files (``esxbot logs scan``).

Any shape ESXi writes is accepted (collector lines, local vmkernel/vmkwarning/vobd files, 8.x
standardized lines, raw syslog); ``.gz`` files of a support bundle are read too. Lines in no known
shape (a pasted vCenter alarm text, a config issue) are still matched, with no time or host. With an
inventory, a host named by the line (or ``default_host``) decides what its boot device is.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.alerts.logline import LogLine, parse_line
from bot.alerts.patterns import LogRuleSet, load_rules
from bot.alerts.signals import LogSignal, detect, format_time
from bot.model import Host

_MAX_LINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ScanResult:
    signals: tuple[LogSignal, ...]
    lines: int
    unparsed: int  # lines in no known log shape (still matched, without time or host)
    errors: tuple[str, ...]  # files that could not be read, one sentence each


class HostIndex:
    """Finds inventory hosts by name, short name or management address (case-insensitive)."""

    __slots__ = ("_by_key",)

    def __init__(self, hosts: Iterable[Host]) -> None:
        self._by_key: dict[str, Host] = {}
        for host in hosts:
            for key in (host.name, host.name.split(".", 1)[0], host.address):
                if key:
                    self._by_key.setdefault(key.lower(), host)

    def resolve(self, hostname: str | None, address: str | None = None) -> Host | None:
        for key in (hostname, hostname.split(".", 1)[0] if hostname else None, address):
            if key:
                found = self._by_key.get(key.lower())
                if found is not None:
                    return found
        return None


def scan_lines(
    lines: Iterable[str],
    *,
    source: str,
    rules: LogRuleSet,
    hosts: HostIndex | None = None,
    default_host: str | None = None,
    year: int | None = None,
) -> tuple[list[LogSignal], int, int]:
    """Signals in some lines, with the number of lines read and of lines in no known shape."""
    signals: list[LogSignal] = []
    count = unparsed = 0
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")[:_MAX_LINE]
        if not text.strip():
            continue
        count += 1
        parsed = parse_line(text, year=year)
        if parsed is None:
            unparsed += 1
            parsed = LogLine(time=None, hostname=None, app=None, message=text)
        name = parsed.hostname or default_host
        host = hosts.resolve(name) if hosts is not None and name else None
        signals.extend(
            detect(
                rules,
                parsed,
                host=host,
                host_name=host.name if host is not None else name,
                text=text,
                source=f"{source}:{number}",
            )
        )
    return signals, count, unparsed


def _open_lines(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def scan_files(
    paths: Sequence[Path],
    hosts: Sequence[Host] | None = None,
    *,
    rules: LogRuleSet | None = None,
    default_host: str | None = None,
) -> ScanResult:
    """Scan files in order. An unreadable file is reported in ``errors``, never raised."""
    ruleset = rules if rules is not None else load_rules()
    index = HostIndex(hosts) if hosts is not None else None
    year = datetime.now(UTC).year
    signals: list[LogSignal] = []
    errors: list[str] = []
    total = unparsed_total = 0
    for path in paths:
        try:
            with _open_lines(path) as handle:
                found, count, unparsed = scan_lines(
                    handle, source=str(path), rules=ruleset, hosts=index, default_host=default_host, year=year
                )
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        signals.extend(found)
        total += count
        unparsed_total += unparsed
    return ScanResult(tuple(signals), total, unparsed_total, tuple(errors))


def as_json(result: ScanResult) -> list[dict[str, Any]]:
    """The ``--json`` output: a list of ``{"host", "kind", "device", "time", "line", ...}``."""
    return [signal.as_json() for signal in result.signals]


def format_text(result: ScanResult) -> str:
    """One line per signal, then a summary (the errors are the caller's to print, on stderr)."""
    out: list[str] = []
    for s in result.signals:
        when = format_time(s.time) if s.time else "-"
        out.append(f"{when}  {s.host or '-'}  {s.kind.value.upper()}  {s.device or '-'}  {s.line}")
    kinds: dict[str, int] = {}
    for s in result.signals:
        kinds[s.kind.value] = kinds.get(s.kind.value, 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    out.append(
        f"{len(result.signals)} signal(s){f' ({by_kind})' if by_kind else ''} in {result.lines} line(s); "
        f"{result.unparsed} line(s) in no known log shape"
    )
    return "\n".join(out)


def render(result: ScanResult, *, json_output: bool) -> str:
    """What ``esxbot logs scan`` prints on stdout."""
    if json_output:
        return json.dumps(as_json(result), ensure_ascii=False, indent=2)
    return format_text(result)
