"""What the release commands, ``check`` and notifications ask about releases, answered in one place.

Releases come from the database (sources) and from bundled release notes (demo mode); the service
finds them by name, build or line, runs the matcher over the current inventory, lists "fixes that
matter to this host in newer releases", and writes the release notification to the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from bot.builds import BuildCatalog, version_tuple
from bot.inventory.merged import Inventory
from bot.messages import Actions, Block, Button, Reply, Style, Table, Text, shorten
from bot.model import Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import ReleaseMatches, match_release
from bot.releases.sources.release_notes import parse_notes
from bot.store.release_records import ReleaseRepo

log = logging.getLogger(__name__)

MATTERS = (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED)
HOSTS_NAMED = 5  # past this many hosts a line says "and N more"
FIXES_LISTED = 12  # a notification lists this many fixes, then counts the rest


class Publisher(Protocol):
    """The outbox's ``publish``: one row per room subscribed to ``topic``, idempotent by ``key``."""

    async def publish(self, topic: str, reply: Reply, *, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class PendingFixes:
    """Fixes of newer releases that matter to one host, and the newest release that carries them all."""

    host: str
    items: tuple[tuple[Release, Fix, Verdict], ...]
    target: Release | None


def bundled_releases() -> list[Release]:
    """The demo release notes shipped in ``bot/data/demo/notes`` (parsed at start)."""
    found = []
    for entry in sorted(resources.files("bot").joinpath("data/demo/notes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".html", ".txt")):
            result = parse_notes(entry.read_bytes(), url=f"bundled:{entry.name}")
            if result.release is not None:
                found.append(result.release)
    return found


def hosts_phrase(hosts: Sequence[str]) -> str:
    short = [h.split(".")[0] for h in hosts]
    if len(short) <= HOSTS_NAMED:
        return ", ".join(short)
    return f"{', '.join(short[:HOSTS_NAMED])} and {len(short) - HOSTS_NAMED} more"


class ReleaseService:
    def __init__(
        self,
        catalog: BuildCatalog,
        rules: MatchRuleSet,
        inventory: Inventory,
        *,
        repo: ReleaseRepo | None = None,
        bundled: Sequence[Release] = (),
    ) -> None:
        self.catalog = catalog
        self.rules = rules
        self._inventory = inventory
        self._repo = repo
        self._bundled = tuple(bundled)
        for release in self._bundled:
            catalog.add(release)

    def hosts(self) -> Sequence[Host]:
        return self._inventory.hosts()

    async def releases(self) -> list[Release]:
        """Known releases with notes, newest first (stored ones win over bundled ones)."""
        by_build = {r.build: r for r in self._bundled}
        if self._repo is not None:
            for release in await self._repo.all():
                if release.fixes or release.build not in by_build:
                    by_build[release.build] = release
        return sorted(by_build.values(), key=_newest, reverse=True)

    async def find(self, ref: str) -> Release | None:
        """``latest``, a build number, a name (``7.0 U2c``) or a line (``7.0``: its newest release)."""
        releases = await self.releases()
        text = ref.strip()
        if not releases:
            return None
        if text.lower() in ("", "latest"):
            return releases[0]
        if text.isdigit():
            return next((r for r in releases if r.build == int(text)), None)
        known = self.catalog.find(text)
        if known is not None:
            return next((r for r in releases if r.build == known.build), None)
        return next((r for r in releases if r.line == text or r.version == text), None)

    async def find_pr(self, pr: str) -> list[tuple[Release, Fix]]:
        digits = "".join(ch for ch in pr if ch.isdigit())
        return [(r, f) for r in await self.releases() for f in r.fixes if f.pr == digits]

    def match(self, release: Release) -> ReleaseMatches:
        return match_release(release, self.hosts(), self.rules, self.catalog)

    async def pending(self, host: Host) -> PendingFixes:
        """Fixes that matter to ``host`` from releases its build does not contain."""
        items: list[tuple[Release, Fix, Verdict]] = []
        carriers: list[Release] = []
        for release in await self.releases():
            result = match_release(release, [host], self.rules, self.catalog)
            hits = [
                (release, fm.fix, verdict) for fm in result.fixes for verdict in MATTERS if fm.hosts(verdict)
            ]
            if hits:
                items.extend(hits)
                carriers.append(release)
        target = max(carriers, key=_newest, default=None)
        if target is not None and host.build is not None:
            for release in carriers:
                if self.catalog.contains(target.build, release).contained is not True:
                    target = None
                    break
        return PendingFixes(host.name, tuple(items), target)

    async def host_notes(self, host: Host) -> Sequence[Block]:
        """For ``check``: "fixes that matter to this host in newer releases" (a ``HostNotes``)."""
        pending = await self.pending(host)
        if not pending.items:
            return ()
        affected_first = sorted(pending.items, key=lambda item: item[2] != Verdict.AFFECTED)
        rows = tuple(
            (f"PR {fix.pr}", verdict.value, release.name, shorten(fix.title, 90))
            for release, fix, verdict in affected_first
        )
        if pending.target is not None:
            advice = f"{pending.target.name} (build {pending.target.build}) contains them all."
        else:
            advice = "No single known release contains them all."
        title = f"Fixes that matter to {host.name} in newer releases: {len(rows)}. {advice}"
        return (Table(("PR", "verdict", "release", "title"), rows, title=title),)  # long answers are paged

    def announcement(self, release: Release, *, update: bool = False) -> Reply:
        """The notification text: release, build, date, fix count, and what matters on this fleet."""
        result = self.match(release)
        date = release.release_date.isoformat() if release.release_date else "date unknown"
        head = (
            f"{'Fixes published for' if update else 'New release:'} {release.name} "
            f"(build {release.build}, {date}): {len(release.fixes)} fixes"
        )
        lines: list[tuple[str, str, str]] = []
        for fm in result.fixes:
            affected = fm.hosts(Verdict.AFFECTED)
            possibly = fm.hosts(Verdict.POSSIBLY_AFFECTED)
            if affected:
                lines.append(
                    (f"PR {fm.fix.pr}", f"affects {hosts_phrase(affected)}", shorten(fm.fix.title, 100))
                )
            elif possibly:
                lines.append(
                    (f"PR {fm.fix.pr}", f"may affect {hosts_phrase(possibly)}", shorten(fm.fix.title, 100))
                )
        lines.sort(key=lambda line: (not line[1].startswith("affects"), line[0]))
        affected_count = sum(1 for line in lines if line[1].startswith("affects"))
        summary = f"{head}; {affected_count} affect your hosts, {len(lines) - affected_count} may."
        blocks: list[Block] = [Text(summary, Style.WARNING if affected_count else Style.PLAIN)]
        if lines:
            blocks.append(Table(("PR", "hosts", "title"), tuple(lines[:FIXES_LISTED])))
        if len(lines) > FIXES_LISTED:
            blocks.append(Text(f"… and {len(lines) - FIXES_LISTED} more."))
            blocks.append(
                Actions((Button("Show every fix", f"fixes {release.name}"),))
            )  # each platform's form
        if release.notes_url and not release.notes_url.startswith("bundled:"):
            blocks.append(Text(f"Release notes: {release.notes_url}"))
        data = {"release": release.name, "build": release.build, "fixes": len(release.fixes)}
        return Reply(summary=summary, blocks=tuple(blocks), data=data)


class ReleaseAnnouncer:
    """The source poller's ``Announcer``: one outbox row per subscribed room, keyed by build."""

    def __init__(self, service: ReleaseService, outbox: Publisher) -> None:
        self._service = service
        self._outbox = outbox

    async def __call__(self, release: Release, *, update: bool) -> None:
        reply = self._service.announcement(release, update=update)
        key = f"release:{release.build}" + (":fixes" if update else "")
        rooms = await self._outbox.publish("releases", reply, key=key)
        log.info("release %s (%d) announced to %d room(s)", release.name, release.build, len(rooms))


def _newest(release: Release) -> tuple[object, ...]:
    day = release.release_date.toordinal() if release.release_date else 0
    return (day, version_tuple(release.version or release.line), release.build)
