"""Offline triage: run the syslog rules over saved ESXi log files (``esxbot logs scan``).

Any shape ESXi writes is accepted (collector lines, local vmkernel/vmkwarning/vobd files, 8.x
standardized lines, raw syslog); ``.gz`` files of a support bundle are read too. Lines in no known
shape (a pasted vCenter alarm text, a config issue) are still matched, with no time or host. With an
inventory, a host named by the line (or ``default_host``) decides what its boot device is.

Files are not trusted either: a line is read up to ``_MAX_LINE`` bytes (the rest of a longer one is
skipped, never held), a file yields at most ``max_bytes`` bytes after decompression, only regular files
are read (not ``/dev/zero``), and signals found before a corrupt part of a ``.gz`` are kept and
reported together with the error.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.alerts.logline import LogLine, parse_line
from bot.alerts.patterns import LogRuleSet, load_rules
from bot.alerts.signals import LogSignal, detect, format_time
from bot.model import Host

_MAX_LINE = 64 * 1024
MAX_BYTES = 4 * 1024**3  # per file, after decompression: a support bundle's logs are far smaller


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


class _BoundedLines:
    """The decoded lines of one open file, bounded; a read error ends them and is kept in ``error``."""

    def __init__(self, handle: io.BufferedIOBase, max_bytes: int) -> None:
        self._handle = handle
        self._max = self._left = max_bytes
        self.lines = 0
        self.error: str | None = None

    def _read(self, limit: int) -> bytes:
        chunk = self._handle.readline(min(limit, self._left + 1))
        self._left -= len(chunk)
        if self._left < 0:
            raise _TooBig
        return chunk

    def __iter__(self) -> Iterator[str]:
        try:
            while raw := self._read(_MAX_LINE + 1):
                self.lines += 1
                if len(raw) > _MAX_LINE and not raw.endswith(b"\n"):
                    while (rest := self._read(_MAX_LINE)) and not rest.endswith(b"\n"):
                        pass  # the rest of an over-long line is skipped, never held
                    raw = raw[:_MAX_LINE]
                yield raw.decode("utf-8", errors="replace")
        except _TooBig:
            self.error = f"stopped after {self.lines} line(s): more than {self._max} bytes"
        except (OSError, EOFError, zlib.error) as exc:
            self.error = f"unreadable after line {self.lines}: {exc}"


class _TooBig(Exception):
    pass


def _open(path: Path) -> io.BufferedIOBase:
    if not path.is_file():
        raise OSError(f"not a regular file: {path}")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def scan_files(
    paths: Sequence[Path],
    hosts: Sequence[Host] | None = None,
    *,
    rules: LogRuleSet | None = None,
    default_host: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> ScanResult:
    """Scan files in order. An unreadable (part of a) file is reported in ``errors``, never raised."""
    ruleset = rules if rules is not None else load_rules()
    index = HostIndex(hosts) if hosts is not None else None
    year = datetime.now(UTC).year
    signals: list[LogSignal] = []
    errors: list[str] = []
    total = unparsed_total = 0
    for path in paths:
        try:
            with _open(path) as handle:
                lines = _BoundedLines(handle, max_bytes)
                found, count, unparsed = scan_lines(
                    lines, source=str(path), rules=ruleset, hosts=index, default_host=default_host, year=year
                )
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        if lines.error is not None:
            errors.append(f"{path}: {lines.error}; {len(found)} signal(s) before that are kept")
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
