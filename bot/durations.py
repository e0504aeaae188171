"""Durations as people write them (``30s``, ``90m``, ``2h``, ``1d12h``): one parser for chat and config."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)\s*(w|d|h|m|s)", re.IGNORECASE)
MAX_SECONDS = 100 * 365 * 86400  # far beyond any silence or timeout, far below timedelta's limit
_UNIT = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(raw: str) -> timedelta:
    """``90m``, ``2h``, ``1d12h``, ``45s``; plain digits are minutes."""
    text = raw.strip().lower()
    if text.isdigit():
        return _span(int(text) * 60, raw)
    pos, seconds = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        seconds += int(m.group(1)) * _UNIT[m.group(2).lower()]
        pos = m.end()
    if pos != len(text) or seconds <= 0:
        raise ValueError(raw)
    return _span(seconds, raw)


def _span(seconds: int, raw: str) -> timedelta:
    if seconds > MAX_SECONDS:
        raise ValueError(f"{raw}: longer than 100 years")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The way people write it back: ``4h``, ``1d12h``, ``90s`` → ``1m30s``; never ``4:00:00``."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
