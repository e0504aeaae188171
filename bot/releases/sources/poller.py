"""The configured release sources and the loop that polls them.

A source is (name, kind, url, interval, enabled); kinds are ``atom`` (feed entries, optionally
following each entry's link to its notes page), ``catalog`` (JSON build catalog), ``notes`` (one
release-notes page) and ``depot`` (the online or an offline ESXi depot, ``sources/depot.py``);
``public`` stands for the real public endpoints; the security-advisory kinds (``vmsa-list``, ``vmsa``,
``cve``, ``kev``) share this configuration and the poll state table but are polled by
``bot.advisories.poller``. Each poll is a conditional GET; a 304 costs no
parse. Errors back off per source with jitter and show in ``sources``. New releases are stored,
taught to the build catalog, and announced once per build: the first successful poll of a source
only primes it (everything already listed is old news), and a build already announced by any source
is not announced again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Protocol

from bot.builds import BuildCatalog
from bot.clock import Clock
from bot.config import SecretRef
from bot.model import Release
from bot.releases.sources.atom import FeedEntry, parse_feed
from bot.releases.sources.depot import DepotError, DepotReader
from bot.releases.sources.fetch import Backoff, Fetcher, FetchError, FetchResult
from bot.releases.sources.json_catalog import parse_catalog
from bot.releases.sources.release_notes import parse_notes
from bot.schema import DURATION, ConfigError, Range, Via, parse, show
from bot.store.release_records import ReleaseRepo, SourceState

log = logging.getLogger(__name__)


class SourceKind(StrEnum):
    ATOM = "atom"
    CATALOG = "catalog"
    NOTES = "notes"
    DEPOT = "depot"
    VMSA_LIST = "vmsa-list"  # security advisories (bot/advisories/ polls these four)
    VMSA = "vmsa"
    CVE = "cve"
    KEV = "kev"


RELEASE_KINDS = frozenset({SourceKind.ATOM, SourceKind.CATALOG, SourceKind.NOTES, SourceKind.DEPOT})


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: SourceKind
    url: str
    interval: Annotated[float, DURATION, Range(60, None)] = 3600.0  # seconds between polls
    enabled: bool = True
    follow_links: bool = True  # atom: fetch each new entry's link as a notes page
    # depot: the download token that replaces {token} in the URL
    token: Annotated[SecretRef | None, Via(SecretRef.optional, SecretRef.FORM)] = None
    segment: str = "VC"  # vmsa-list: the API's segment (VC = VMware Cloud Foundation / vSphere)
    page_size: Annotated[int, Range(1, 1000)] = 100  # vmsa-list: rows per page

    def __post_init__(self) -> None:
        local = self.kind is SourceKind.DEPOT and self.url.startswith(("file://", "/"))
        if not self.url.startswith(("http://", "https://")) and not local:
            raise ValueError(f"url must be http(s) (a depot may also be a local path): {self.url[:80]!r}")
        if self.token is not None and self.kind is not SourceKind.DEPOT:
            raise ValueError("only a depot source takes a token")
        if "{token}" in self.url and self.token is None:
            raise ValueError("the url holds {token}: add token: env:VAR or file:/path")


@dataclass(frozen=True, slots=True)
class PollReport:
    source: str
    new: tuple[Release, ...] = ()
    not_modified: bool = False
    error: str | None = None
    warnings: tuple[str, ...] = ()
    primed: bool = False  # first poll: releases stored silently


class Announcer(Protocol):
    """Tells subscribed rooms about a release (``update``: its fixes arrived after the first word)."""

    async def __call__(self, release: Release, *, update: bool) -> None: ...


# ``sources: public`` (or an entry ``{preset: public, …}``): the real public endpoints, documented in
# docs/releases.md. ``mirror`` swaps scheme and host of each (an air-gapped HTTP mirror, or tests).
PUBLIC_CATALOG = "https://www.virten.net/repo/esxiReleases.json"
PUBLIC_DEPOT = "https://dl.broadcom.com/{token}/PROD/COMP/ESX_HOST/main/vmw-depot-index.xml"
PUBLIC_ADVISORIES = (
    "https://support.broadcom.com/web/ecx/security-advisory/-/securityadvisory/getSecurityAdvisoryList"
)
PUBLIC_KEV = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"


def public_preset(entry: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The entries ``preset: public`` stands for: the build catalog, Broadcom's security-advisory list,
    CISA's KEV catalog, and the depot when a token is given."""
    unknown = sorted(set(entry) - {"preset", "token", "mirror", "interval"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", "unknown key for preset public (token, mirror, interval)")
    mirror = str(entry.get("mirror") or "").rstrip("/")

    def at(url: str) -> str:
        if not mirror:
            return url
        parts = url.split("/", 3)  # "https:", "", host, path
        return f"{mirror}/{parts[3]}"

    found: list[dict[str, Any]] = [
        {"name": "public-catalog", "kind": "catalog", "url": at(PUBLIC_CATALOG), "interval": 6 * 3600},
        {"name": "public-advisories", "kind": "vmsa-list", "url": at(PUBLIC_ADVISORIES), "segment": "VC",
         "interval": 3600},
        {"name": "public-kev", "kind": "kev", "url": at(PUBLIC_KEV), "interval": 6 * 3600},
    ]  # fmt: skip
    if entry.get("token"):
        found.append(
            {"name": "public-depot", "kind": "depot", "url": at(PUBLIC_DEPOT), "token": entry["token"],
             "interval": 6 * 3600}
        )  # fmt: skip
    if entry.get("interval") is not None:
        for item in found:
            item["interval"] = entry["interval"]
    return found


def _expanded(entries: Iterable[Any] | str) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(entries, str):
        entries = [entries]
    out: list[tuple[str, Mapping[str, Any]]] = []
    for index, entry in enumerate(entries):
        where = f"sources[{index}]"
        if entry == "public":
            entry = {"preset": "public"}
        if not isinstance(entry, Mapping):
            problem = f"expected a mapping with kind and url, or the word public; got {show(entry)}"
            raise ConfigError(where, problem)
        if "preset" in entry:
            if entry["preset"] != "public":
                problem = f"unknown preset {show(entry['preset'])} (known: public)"
                raise ConfigError(f"{where}.preset", problem)
            out += [(f"{where} (preset public)", item) for item in public_preset(entry, where)]
        else:
            out.append((where, entry))
    return out


def parse_sources(entries: Any) -> list[SourceConfig]:
    """The ``sources`` section (a list, or ``public``); ``ConfigError`` names the entry and the key."""
    if entries is None:
        return []
    if not isinstance(entries, list | tuple | str):
        raise ConfigError("sources", f"expected a list, got {show(entries)}")
    sources: list[SourceConfig] = []
    for where, entry in _expanded(entries):
        raw = {"name": "", **entry}
        source = parse(SourceConfig, raw, where)
        if not source.name:
            source = replace(source, name=f"{source.kind.value}:{source.url}")
        if any(s.name == source.name for s in sources):
            raise ConfigError(f"{where}.name", f"duplicate source name {source.name!r}")
        sources.append(source)
    return sources
    return sources


def _entry_release(entry: FeedEntry) -> Release | None:
    if entry.release_name is None or entry.build is None or entry.line is None:
        return None
    return Release(
        line=entry.line,
        name=entry.release_name,
        build=entry.build,
        release_date=entry.release_date,
        version=entry.version,
        notes_url=entry.link,
    )


class SourcePoller:
    def __init__(
        self,
        sources: Sequence[SourceConfig],
        fetcher: Fetcher,
        repo: ReleaseRepo,
        clock: Clock,
        catalog: BuildCatalog,
        *,
        announce: Announcer | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self._fetcher = fetcher
        self._repo = repo
        self._clock = clock
        self._catalog = catalog
        self._announce = announce
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._depot = DepotReader(fetcher, repo)
        self.on_poll: Callable[[str, str], None] | None = None  # (source, ok|not-modified|error): metrics

    async def restore(self) -> int:
        """Teach the build catalog every release stored by earlier runs; returns how many."""
        releases = await self._repo.all()
        for release in releases:
            self._catalog.add(release)
        return len(releases)

    async def states(self) -> list[tuple[SourceConfig, SourceState]]:
        return [(source, await self._repo.state(source.name)) for source in self.sources]

    async def poll_all(self) -> list[PollReport]:
        return [await self.poll(source) for source in self.sources if self._mine(source)]

    async def run(self) -> None:
        """Poll each enabled source when it is due, until cancelled."""
        while True:
            now = self._clock.now()
            waits: list[float] = []
            for source in self.sources:
                if not self._mine(source):
                    continue
                state = await self._repo.state(source.name)
                if state.next_poll is None or state.next_poll <= now:
                    await self.poll(source)
                    state = await self._repo.state(source.name)
                if state.next_poll is not None:
                    waits.append((state.next_poll - self._clock.now()).total_seconds())
            await self._clock.sleep(min([60.0, *(w for w in waits if w > 0)]) if waits else 60.0)

    @staticmethod
    def _mine(source: SourceConfig) -> bool:
        """Enabled release sources; advisory kinds are listed here (``sources``) but polled elsewhere."""
        return source.enabled and source.kind in RELEASE_KINDS

    async def poll(self, source: SourceConfig) -> PollReport:
        """One conditional GET and, unless 304, one parse; never raises for source trouble."""
        report = await self._poll(source)
        if self.on_poll is not None:
            result = "error" if report.error else "not-modified" if report.not_modified else "ok"
            self.on_poll(source.name, result)
        return report

    async def _poll(self, source: SourceConfig) -> PollReport:
        state = await self._repo.state(source.name)
        if source.kind is SourceKind.DEPOT:
            return await self._poll_depot(source, state)
        try:
            result = await self._fetcher.get(source.url, etag=state.etag, last_modified=state.last_modified)
            if result.not_modified:
                await self._succeeded(source, state, result)
                return PollReport(source.name, not_modified=True)
            releases, warnings = await self._parse(source, result)
        except FetchError as exc:
            return await self._failed(source, state, str(exc))
        if releases is None:
            return await self._failed(source, state, "; ".join(warnings) or "nothing usable in the response")
        new = await self._record(source, state, releases)
        await self._succeeded(source, state, result)
        return PollReport(source.name, tuple(new), warnings=tuple(warnings), primed=not state.primed)

    async def _poll_depot(self, source: SourceConfig, state: SourceState) -> PollReport:
        try:
            token = await asyncio.to_thread(source.token.resolve) if source.token else None
        except LookupError as exc:
            return await self._failed(source, state, f"depot token: {exc}")
        try:
            found = await self._depot.poll(source.name, source.url, token)
        except DepotError as exc:
            return await self._failed(source, state, str(exc))
        done = FetchResult(source.url, 304 if found.not_modified else 200)
        if found.not_modified:
            await self._succeeded(source, state, done)
            return PollReport(source.name, not_modified=True)
        for warning in found.warnings:
            log.info("source %s: %s", source.name, warning)
        new = await self._record(source, state, list(found.releases))
        await self._succeeded(source, state, done)
        return PollReport(source.name, tuple(new), warnings=found.warnings, primed=not state.primed)

    async def _parse(
        self, source: SourceConfig, result: FetchResult
    ) -> tuple[list[Release] | None, list[str]]:
        if source.kind is SourceKind.CATALOG:
            parsed = parse_catalog(result.body, url=source.url)
            return (list(parsed.releases) if parsed.releases else None), list(parsed.warnings)
        if source.kind is SourceKind.NOTES:
            notes = parse_notes(result.body, url=source.url, content_type=result.content_type)
            return ([notes.release] if notes.release else None), list(notes.warnings)
        feed = parse_feed(result.body, url=source.url)
        if not feed.entries:
            return None, list(feed.warnings) or ["feed has no entries"]
        releases: list[Release] = []
        warnings = list(feed.warnings)
        for entry in feed.entries:
            if await self._repo.seen(source.name, entry.key):
                continue
            release = await self._follow(entry, warnings) if source.follow_links else None
            release = release or _entry_release(entry)
            await self._repo.mark_seen(source.name, entry.key, self._clock.now())
            if release is not None:
                releases.append(release)
        return releases, warnings

    async def _follow(self, entry: FeedEntry, warnings: list[str]) -> Release | None:
        if not entry.link or not entry.link.startswith(("http://", "https://")):
            return None
        try:
            page = await self._fetcher.get(entry.link)
        except FetchError as exc:
            warnings.append(f"{entry.link}: {exc}")
            return None
        notes = parse_notes(page.body, url=entry.link, content_type=page.content_type)
        warnings.extend(f"{entry.link}: {w}" for w in notes.warnings)
        return notes.release

    async def _record(
        self, source: SourceConfig, state: SourceState, releases: list[Release]
    ) -> list[Release]:
        now = self._clock.now()
        new: list[Release] = []
        for release in releases:
            had_fixes = bool(await self._repo.fixes(release.build))
            created = await self._repo.save(release, source=source.name, now=now)
            self._catalog.add(release)
            if created:
                new.append(release)
            if not state.primed:
                await self._repo.mark_announced(release.build, now)
                continue
            if not await self._repo.announced(release.build):
                stored = await self._repo.get(release.build)
                await self._tell(stored or release, update=False)
                await self._repo.mark_announced(release.build, now)
            elif release.fixes and not had_fixes:
                stored = await self._repo.get(release.build)
                await self._tell(stored or release, update=True)
        if not state.primed and releases:
            log.info("source %s primed with %d releases (not announced)", source.name, len(releases))
        return new

    async def _tell(self, release: Release, *, update: bool) -> None:
        if self._announce is not None:
            await self._announce(release, update=update)

    async def _succeeded(self, source: SourceConfig, state: SourceState, result: FetchResult) -> None:
        now = self._clock.now()
        delay = self._backoff.delay(source.interval, 0, self._rng)
        next_poll = now + timedelta(seconds=delay)
        await self._repo.save_state(state.succeeded(now, next_poll, result.etag, result.last_modified))

    async def _failed(self, source: SourceConfig, state: SourceState, error: str) -> PollReport:
        now = self._clock.now()
        delay = self._backoff.delay(source.interval, state.failures + 1, self._rng)
        log.warning(
            "source %s failed (%d in a row, next try in %.0fs): %s",
            source.name,
            state.failures + 1,
            delay,
            error,
        )
        await self._repo.save_state(state.failed(now, now + timedelta(seconds=delay), error))
        return PollReport(source.name, error=error)
