"""Parse one ESXi log line, in any shape ESXi writes or sends, into time, hostname, app and message.

Shapes: RFC 5424 syslog as ESXi 7/8 sends it (``<PRI>1 TS HOST APP PROCID MSGID SD MSG``); RFC 3164
as ESXi 6.x sends it (``<PRI>TS HOST APP[PID]: MSG``, ISO or BSD timestamp); the same without
``<PRI>`` as a collector stores it; local 7.x vmkernel/vmkwarning file lines (``TS cpuN:W)MSG``);
vobd lines (``TS: [correlator] ...``); 8.x standardized lines (``TS Wa(180)[+] APP[PID]: MSG``);
7.x hostd-style lines (``TS info hostd[PID] MSG``). Anything else (garbage, truncated headers,
binary, NUL bytes, invalid UTF-8) gives ``None``: the caller counts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BSD = rf"(?:{'|'.join(_MONTH_NAMES)}) [ \d]\d \d\d:\d\d:\d\d"
_HOST = r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,254}"
_APP = r"[A-Za-z0-9_][\w.\-/]{0,63}"
_PID = r"(?:\[\d{1,10}\])?"

_RFC5424 = re.compile(
    rf"<(?P<pri>\d{{1,3}})>1 (?P<ts>{_ISO}|-) (?P<host>{_HOST}|-) (?P<app>{_APP}|-) (?P<procid>\S{{1,128}})"
    r" (?P<msgid>\S{1,32}) (?P<sd>-|(?:\[(?:[^\]\\]|\\.){0,2048}\])+)(?: (?P<msg>.*))?",
    re.DOTALL,
)
_RFC3164 = re.compile(
    rf"(?:<(?P<pri>\d{{1,3}})>)?(?P<ts>{_ISO}|{_BSD}) (?P<host>{_HOST}) (?P<app>{_APP}){_PID}: ?(?P<msg>.*)",
    re.DOTALL,
)
_STANDARD8 = re.compile(
    rf"(?P<ts>{_ISO}) (?:Em|Al|Cr|Er|Wa|No|In|Db)\((?P<pri>\d{{1,3}})\)\+? "
    rf"(?P<app>{_APP}){_PID}: ?(?P<msg>.*)",
    re.DOTALL,
)
_VMKERNEL = re.compile(rf"(?P<ts>{_ISO}) (?P<msg>cpu\d+:\d+.*)", re.DOTALL)
_VOBD = re.compile(rf"(?P<ts>{_ISO}): (?P<msg>\[\w+\] .*)", re.DOTALL)
_LEVELED = re.compile(
    rf"(?P<ts>{_ISO}) (?:verbose|info|warning|error|critical|debug|trivia) (?P<app>{_APP})\[\d{{1,10}}\]"
    r":? (?P<msg>.*)",
    re.DOTALL,
)
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_CONTROL = dict.fromkeys([*range(9), *range(10, 32), 127], "?")


@dataclass(frozen=True, slots=True)
class LogLine:
    time: datetime | None  # aware UTC; None when the line carries none
    hostname: str | None
    app: str | None
    message: str


def printable(text: str) -> str:
    """Control characters (terminal escapes, bells) replaced by ``?``, so a line is safe to show."""
    return text if text.isprintable() else text.translate(_CONTROL)


def parse_time(text: str, year: int | None = None) -> datetime | None:
    """ISO 8601 (a missing zone means UTC, as ESXi logs in UTC) or BSD ``Feb  2 19:26:34``."""
    if text == "-":
        return None
    if text[0].isdigit():
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    try:
        hour, minute, second = (int(x) for x in text[7:].split(":"))
        month, day = _MONTHS[text[:3]], int(text[4:6])
        return datetime(year or datetime.now(UTC).year, month, day, hour, minute, second, tzinfo=UTC)
    except (ValueError, KeyError):
        return None


def parse_line(raw: bytes | str, *, year: int | None = None) -> LogLine | None:
    """One line (without its line end) → ``LogLine``, or ``None`` when it is not a log line.

    ``year`` completes BSD timestamps, which have none (default: the current year).
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        text = raw
    text = text.rstrip("\r\n")
    if not text or "\x00" in text:
        return None
    first = text[0]
    if first == "<":
        found = _RFC5424.fullmatch(text)
        if found is not None:
            return _build(found, year, default_app=None)
        found = _RFC3164.fullmatch(text)
        return _build(found, year, default_app=None) if found is not None else None
    if first.isdigit():
        for shape, app in ((_STANDARD8, None), (_VMKERNEL, "vmkernel"), (_VOBD, "vobd"), (_LEVELED, None)):
            found = shape.fullmatch(text)
            if found is not None:
                return _build(found, year, default_app=app)
    found = _RFC3164.fullmatch(text)
    return _build(found, year, default_app=None) if found is not None else None


def _build(found: re.Match[str], year: int | None, default_app: str | None) -> LogLine | None:
    groups = found.groupdict()
    pri = groups.get("pri")
    if pri is not None and int(pri) > 191:
        return None
    msg = printable((groups.get("msg") or "").removeprefix("\ufeff"))
    stamp = groups["ts"]
    when = parse_time(stamp, year)
    if when is None and stamp != "-":
        return None  # a timestamp in the right shape but impossible (month 13, Feb 30)
    host = groups.get("host")
    app = groups.get("app") or default_app
    return LogLine(
        time=when,
        hostname=None if host in (None, "-") else host,
        app=None if app == "-" else app,
        message=msg,
    )
