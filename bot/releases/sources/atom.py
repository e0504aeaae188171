"""Atom/RSS feeds of releases: feedparser over bytes we fetched ourselves (never ``parse(url)``).

Each entry becomes a ``FeedEntry``; when its title or summary names an ESXi release and a build
number it also yields a ``Release`` (no fixes: those come from the notes page the entry links to).
A malformed feed is reported in ``warnings``; entries feedparser still recovered are kept.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import feedparser

from bot.builds import version_from_name

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"\bESXi\s+(\d\.\d)(?:\s*(?:Update|U)\s*(\d[a-z]?)\b|([a-z])\b)?", re.IGNORECASE)
_BUILD_RE = re.compile(r"(?:build|ビルド)[\s#:-]*(\d{7,8})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    key: str  # the entry id, else its link, else its title
    title: str
    link: str | None
    published: datetime | None
    summary: str
    release_name: str | None = None
    line: str | None = None
    version: str | None = None
    build: int | None = None

    @property
    def release_date(self) -> date | None:
        return self.published.date() if self.published else None


@dataclass(frozen=True, slots=True)
class FeedResult:
    title: str | None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...] = ()


def _time(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(time.mktime(parsed) - time.timezone, UTC)


def _entry(raw: Any) -> FeedEntry | None:
    title = re.sub(r"\s+", " ", str(raw.get("title", ""))).strip()
    link = raw.get("link") or None
    key = str(raw.get("id") or link or title)
    if not key:
        return None
    summary = re.sub(r"<[^>]+>", " ", str(raw.get("summary", "")))
    summary = re.sub(r"\s+", " ", summary).strip()
    text = f"{title} {summary}"
    name_match = _NAME_RE.search(text)
    name = line = None
    if name_match:
        line, update, letter = name_match.groups()
        name = f"ESXi {line} Update {update}" if update else f"ESXi {line}{letter or ''}"
    build_match = _BUILD_RE.search(text)
    return FeedEntry(
        key=key,
        title=title,
        link=str(link) if link else None,
        published=_time(raw),
        summary=summary,
        release_name=name,
        line=line,
        version=version_from_name(name) if name else None,
        build=int(build_match.group(1)) if build_match else None,
    )


def parse_feed(data: bytes, *, url: str | None = None) -> FeedResult:
    parsed = feedparser.parse(data)
    warnings: list[str] = []
    if parsed.get("bozo"):
        warnings.append(f"malformed feed: {parsed.get('bozo_exception')!r}")
    entries = [e for e in (_entry(raw) for raw in parsed.get("entries", [])) if e is not None]
    if not entries and not parsed.get("feed"):
        warnings.append("no feed and no entries found")
    for warning in warnings:
        log.warning("feed %s: %s", url or "<document>", warning)
    title = parsed.get("feed", {}).get("title")
    return FeedResult(str(title) if title else None, tuple(entries), tuple(warnings))
