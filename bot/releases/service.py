"""What the release commands, ``check`` and notifications ask about releases, answered in one place.

Releases come from the database (sources) and from bundled release notes (demo mode); the service
finds them by name, build or line, runs the matcher over the current inventory, lists "fixes that
matter to this host in newer releases", and writes the release notification to the outbox.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Protocol

from bot.builds import BuildCatalog, KnownBuild, version_tuple
from bot.inventory.merged import Inventory
from bot.messages import Actions, Block, Button, Reply, Style, Table, Text, shorten
from bot.model import Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import Outcome, ReleaseMatches, match_release
from bot.releases.sources.release_notes import parse_notes
from bot.schema import Seconds
from bot.store.release_records import ReleaseRepo

log = logging.getLogger(__name__)

MATTERS = (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED)
SOAK = timedelta(days=14)  # a release younger than this is "fresh": patch asks for --fresh


@dataclass(frozen=True, slots=True)
class ReleaseSettings:
    """The ``releases`` section: ``soak``, how long a new release counts as too young to patch to
    without ``--fresh`` (``0`` turns it off)."""

    soak: Seconds = 14 * 86400.0


HOSTS_NAMED = 5  # past this many hosts a line says "and N more"
FIXES_LISTED = 12  # a notification lists this many fixes, then counts the rest


class Publisher(Protocol):
    """The outbox's ``publish``: one row per room subscribed to ``topic``, idempotent by ``key``."""

    async def publish(self, topic: str, reply: Reply, *, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class PendingFixes:
    """Fixes of newer releases that matter to one host, and the newest release that carries them all."""

    host: str
    items: tuple[tuple[Release, Fix, Outcome], ...]
    target: Release | None

    @property
    def affected(self) -> tuple[tuple[Release, Fix, Outcome], ...]:
        return tuple(item for item in self.items if item[2].verdict is Verdict.AFFECTED)

    @property
    def possibly(self) -> tuple[tuple[Release, Fix, Outcome], ...]:
        return tuple(item for item in self.items if item[2].verdict is Verdict.POSSIBLY_AFFECTED)


def bundled_releases() -> list[Release]:
    """The demo release notes shipped in ``bot/data/demo/notes`` (parsed at start)."""
    found = []
    for entry in sorted(resources.files("bot").joinpath("data/demo/notes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".html", ".txt")):
            result = parse_notes(entry.read_bytes(), url=f"bundled:{entry.name}")
            if result.release is not None:
                found.append(result.release)
    return found


def release_of(known: KnownBuild) -> Release:
    """A catalog row as a ``Release`` without fixes (a replacement build nobody read notes for)."""
    return Release(known.line, known.name, known.build, known.release_date, version=known.version)


def freshness(known: KnownBuild, today: date, soak: timedelta) -> str | None:
    """``"3 days old (soak 14 days)"`` while a release is inside the soak period, else None."""
    if known.release_date is None or soak <= timedelta(0):
        return None
    age = (today - known.release_date).days
    if 0 <= age < soak.days:
        return f"{age} day{'s' if age != 1 else ''} old (soak {soak.days} days)"
    return None


UNDECIDED_NAMED = 4  # a summary names this many open facts, then counts the rest


def undecided_phrase(outcomes: Sequence[Outcome], unit: str = "") -> str:
    """What keeps possibly-affected pairs open, most common first: ``vSAN state unknown (2), …``;
    ``unit`` names what the counts count (``pairs``)."""
    counts = Counter(fact for outcome in outcomes for fact in outcome.missing).most_common()
    named = ", ".join(
        fact + (f" ({n}{' ' + unit if unit else ''})" if n > 1 else "")
        for fact, n in counts[:UNDECIDED_NAMED]
    )
    rest = len(counts) - UNDECIDED_NAMED
    return named + (f" and {rest} more" if rest > 0 else "")


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
        soak: timedelta = SOAK,
    ) -> None:
        self.catalog = catalog
        self.soak = soak
        self.rules = rules
        self._inventory = inventory
        self._repo = repo
        self._bundled = tuple(bundled)
        self._known: tuple[Release, ...] = self._bundled  # as of the last ``releases()``
        for release in self._bundled:
            catalog.add(release)

    def hosts(self) -> Sequence[Host]:
        return self._inventory.hosts()

    async def load_withdrawals(self) -> int:
        """Apply the withdrawals admins recorded (``release withdraw``) to the catalog; how many."""
        if self._repo is None:
            return 0
        applied = 0
        for build, reason, replaced_by in await self._repo.withdrawals():
            applied += self.catalog.withdraw(build, reason, replaced_by) is not None
        return applied

    async def withdraw(
        self, known: KnownBuild, reason: str, replaced_by: KnownBuild | None, *, by: str, now: datetime
    ) -> KnownBuild:
        """Mark a release withdrawn from now on (stored, so it survives a restart)."""
        replacement = replaced_by.build if replaced_by else None
        if self._repo is not None:
            await self._repo.withdraw(known.build, reason, replacement, by, now)
        return self.catalog.withdraw(known.build, reason, replacement) or known

    async def releases(self) -> list[Release]:
        """Known releases with notes, newest first (stored ones win over bundled ones)."""
        by_build = {r.build: r for r in self._bundled}
        if self._repo is not None:
            for release in await self._repo.all():
                if release.fixes or release.build not in by_build:
                    by_build[release.build] = release
        found = sorted(by_build.values(), key=_newest, reverse=True)
        self._known = tuple(found)
        return found

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
        """``release`` on the fleet; other known releases name where a fix for an older line is."""
        return match_release(release, self.hosts(), self.rules, self.catalog, others=self._known)

    async def pending(self, host: Host) -> PendingFixes:
        """Fixes that matter to ``host`` from releases its build does not contain."""
        items: list[tuple[Release, Fix, Outcome]] = []
        carriers: list[Release] = []
        known = await self.releases()
        for release in known:
            result = match_release(release, [host], self.rules, self.catalog, others=known)
            hits = [(release, fm.fix, fm.outcome(0)) for fm in result.fixes if fm.hosts(*MATTERS)]
            if hits:
                items.extend(hits)
                carriers.append(release)
        target = self._carrier(carriers)
        if target is not None and host.build is not None:
            for release in carriers:
                if self.catalog.contains(target.build, release).contained is not True:
                    target = None
                    break
        return PendingFixes(host.name, tuple(items), target)

    def _carrier(self, carriers: Sequence[Release]) -> Release | None:
        """The newest carrier that is not withdrawn; for a withdrawn newest one, its replacement."""
        newest = max(carriers, key=_newest, default=None)
        if newest is None:
            return None
        known = self.catalog.lookup(newest.build)
        if known is None or known.withdrawn is None:
            return newest
        good = [r for r in carriers if (k := self.catalog.lookup(r.build)) is None or k.withdrawn is None]
        replacement = self.catalog.replacement(known)
        if replacement is not None:
            good.append(next((r for r in carriers if r.build == replacement.build), release_of(replacement)))
        return max(good, key=_newest, default=None)

    def withdrawn_note(self, host: Host) -> Text | None:
        """A warning when the host runs a build VMware withdrew, naming the replacement."""
        known = self.catalog.lookup(host.build)
        if known is None or known.withdrawn is None:
            return None
        replacement = self.catalog.replacement(known)
        instead = f" Move to {replacement.name} (build {replacement.build})." if replacement else ""
        return Text(
            f"{host.name} runs {known.name} (build {known.build}), which VMware withdrew: "
            f"{known.withdrawn}.{instead}",
            Style.WARNING,
        )

    async def host_notes(self, host: Host, *, expand: bool = False) -> Sequence[Block]:
        """For ``check`` (a ``HostNotes``): a warning when the host runs a withdrawn build, then "fixes
        that matter to this host in newer releases": the affected ones listed, the possibly-affected
        ones counted with what keeps them open (listed too with ``expand``)."""
        warning = self.withdrawn_note(host)
        blocks: list[Block] = [warning] if warning else []
        pending = await self.pending(host)
        if not pending.items:
            return tuple(blocks)
        listed = pending.items if expand else pending.affected
        rows = tuple(
            (f"PR {fix.pr}", outcome.verdict.value, release.name, shorten(fix.title, 90))
            for release, fix, outcome in sorted(listed, key=lambda item: item[2].verdict != Verdict.AFFECTED)
        )
        if pending.target is not None:
            advice = f"{pending.target.name} (build {pending.target.build}) contains them all."
        else:
            advice = "No single known release contains them all."
        if rows:
            title = f"Fixes that affect {host.name} in newer releases: {len(pending.affected)}. {advice}"
            if expand:
                title = f"Fixes that matter to {host.name} in newer releases: {len(rows)}. {advice}"
            blocks.append(
                Table(("PR", "verdict", "release", "title"), rows, title=title)
            )  # long answers are paged
        possibly = pending.possibly
        if possibly and not expand:
            short = host.name.split(".")[0]
            open_facts = undecided_phrase([outcome for _, _, outcome in possibly])
            blocks.append(
                Text(
                    f"{len(possibly)} {'more' if rows else 'fixes'} might matter to {host.name}: "
                    f"{open_facts}. `check {short} --all` lists them."
                )
            )
        return tuple(blocks)

    def announcement(self, release: Release, *, update: bool = False) -> Reply:
        """The notification text: release, build, date, fix count, and what matters on this fleet."""
        result = self.match(release)
        date = release.release_date.isoformat() if release.release_date else "date unknown"
        head = (
            f"{'Fixes published for' if update else 'New release:'} {release.name} "
            f"(build {release.build}, {date}): {len(release.fixes)} fixes"
        )
        lines: list[tuple[str, str, str]] = []
        possibly_hosts: set[str] = set()
        possibly_fixes: list[Outcome] = []
        per_host: Counter[str] = Counter()
        for fm in result.fixes:
            affected = fm.hosts(Verdict.AFFECTED)
            per_host.update(affected)
            if affected:
                lines.append(
                    (f"PR {fm.fix.pr}", f"affects {hosts_phrase(affected)}", shorten(fm.fix.title, 100))
                )
            for position in fm.explainer.positions(fm.bits[1]):
                possibly_hosts.add(fm.explainer.names[position])
                possibly_fixes.append(fm.outcome(position))
        lines.sort(key=lambda line: line[0])
        possibly_count = sum(1 for fm in result.fixes if fm.bits[1] and not fm.bits[0])
        summary = f"{head}; {len(lines)} affect your hosts, {possibly_count} more may."
        blocks: list[Block] = [Text(summary, Style.WARNING if lines else Style.PLAIN)]
        if per_host:
            ranked = sorted(per_host.items(), key=lambda kv: (-kv[1], kv[0]))
            named = [f"{h.split('.')[0]} ({n} fix{'es' if n > 1 else ''})" for h, n in ranked[:HOSTS_NAMED]]
            rest = f" and {len(ranked) - HOSTS_NAMED} more" if len(ranked) > HOSTS_NAMED else ""
            blocks.append(Text(f"Affected hosts: {', '.join(named)}{rest}."))
        if lines:
            blocks.append(Table(("PR", "hosts", "title"), tuple(lines[:FIXES_LISTED])))
        if len(lines) > FIXES_LISTED:
            blocks.append(Text(f"… and {len(lines) - FIXES_LISTED} more."))
            blocks.append(
                Actions((Button("Show every fix", f"fixes {release.name}"),))
            )  # each platform's form
        if possibly_hosts:
            blocks.append(
                Text(
                    f"Possibly affected: {hosts_phrase(sorted(possibly_hosts))}; undecided by "
                    f"{undecided_phrase(possibly_fixes, 'pairs')}. `affected {release.name}` says per host."
                )
            )
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
        await self._service.releases()  # the known releases name where an older line's fix is
        reply = self._service.announcement(release, update=update)
        key = f"release:{release.build}" + (":fixes" if update else "")
        rooms = await self._outbox.publish("releases", reply, key=key)
        log.info("release %s (%d) announced to %d room(s)", release.name, release.build, len(rooms))


def _newest(release: Release) -> tuple[object, ...]:
    day = release.release_date.toordinal() if release.release_date else 0
    return (day, version_tuple(release.version or release.line), release.build)
