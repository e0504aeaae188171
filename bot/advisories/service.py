"""What the advisory commands, ``check``, ``patch`` previews and notifications ask, answered in one place.

Advisories come from the database (sources) and, in demo mode, from the bundled pages in
``bot/data/advisories``; KEV entries likewise. The service matches them against the current
inventory, writes the notification for a new or revised advisory (exploited flag and vulnerable host
count first), and pages through the alert engine while a KEV-listed CVE has vulnerable hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date
from importlib import resources
from typing import Any, Protocol

from bot.advisories.matching import AdvisoryMatches, HostGroups, Judge, match_advisory
from bot.advisories.model import Advisory, FixState, KevEntry, Verdict, advisory_from_dict
from bot.advisories.page import parse_page
from bot.advisories.records import parse_kev
from bot.alerts.engine import AlertEngine
from bot.alerts.intake import Signal
from bot.builds import BuildCatalog, version_tuple
from bot.inventory.merged import Inventory
from bot.messages import Block, Reply, Style, Table, Text
from bot.model import Host, Severity
from bot.store.advisory_records import AdvisoryRepo

log = logging.getLogger(__name__)

TOPIC = "security"
PAGE_KIND = "exploited-vulnerability"
HOSTS_NAMED = 8  # past this many hosts a message says "and N more"


class Publisher(Protocol):
    async def publish(self, topic: str, reply: Reply, *, key: str) -> list[str]: ...


def hosts_phrase(hosts: Sequence[str], limit: int = HOSTS_NAMED) -> str:
    short = [h.split(".")[0] for h in hosts]
    if len(short) <= limit:
        return ", ".join(short)
    return f"{', '.join(short[:limit])} and {len(short) - limit} more"


def bundled_advisories(catalog: BuildCatalog) -> tuple[list[Advisory], list[KevEntry]]:
    """The demo's advisory pages and KEV excerpt shipped in ``bot/data/advisories``."""
    folder = resources.files("bot").joinpath("data/advisories")
    advisories: list[Advisory] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".html"):
            result = parse_page(entry.read_bytes(), url=f"bundled:{entry.name}", catalog=catalog)
            if result.advisory is not None:
                advisories.append(result.advisory)
    kev = parse_kev(folder.joinpath("kev.json").read_bytes()).entries
    return advisories, list(kev)


def exposure_phrase(result: AdvisoryMatches) -> str:
    """``; 3 exposed by their configuration, 4 not, 2 unknown`` when the advisory depends on one."""
    if not result.advisory.exposures:
        return ""
    split = result.exposure()
    if not any(split.values()):
        return ""
    parts = [f"{len(split[True])} exposed by their configuration"]
    if split[False]:
        parts.append(f"{len(split[False])} not")
    if split[None]:
        parts.append(f"{len(split[None])} unknown")
    return "; " + ", ".join(parts)


def kev_to_dict(entry: KevEntry) -> dict[str, Any]:
    return {
        "cve": entry.cve,
        "date_added": entry.date_added.isoformat() if entry.date_added else None,
        "due_date": entry.due_date.isoformat() if entry.due_date else None,
        "ransomware": entry.ransomware,
        "name": entry.name,
    }


def kev_from_dict(doc: dict[str, Any]) -> KevEntry:
    def day(value: Any) -> date | None:
        return date.fromisoformat(value) if value else None

    return KevEntry(
        doc["cve"],
        day(doc.get("date_added")),
        day(doc.get("due_date")),
        doc.get("ransomware"),
        doc.get("name") or "",
    )


def _rank(advisory: Advisory) -> tuple[int, int]:
    year, number = advisory.id.removeprefix("VMSA-").partition("-")[::2]
    return (int(year), int(number)) if year.isdigit() and number.isdigit() else (0, 0)


class AdvisoryService:
    def __init__(
        self,
        catalog: BuildCatalog,
        inventory: Inventory,
        *,
        repo: AdvisoryRepo | None = None,
        bundled: Sequence[Advisory] = (),
        bundled_kev: Sequence[KevEntry] = (),
        outbox: Publisher | None = None,
        engine: AlertEngine | None = None,
    ) -> None:
        self.catalog = catalog
        self._inventory = inventory
        self._repo = repo
        self._bundled = {a.id: a for a in bundled}
        self._bundled_kev = {k.cve: k for k in bundled_kev}
        self._outbox = outbox
        self._engine = engine

    def hosts(self) -> Sequence[Host]:
        return self._inventory.hosts()

    async def advisories(self) -> list[Advisory]:
        """Every known advisory, newest id first (stored ones win over bundled ones)."""
        found = dict(self._bundled)
        if self._repo is not None:
            for stored in await self._repo.all():
                try:
                    found[stored.id] = advisory_from_dict(stored.doc)
                except (KeyError, TypeError, ValueError):
                    log.warning("stored advisory %s is unreadable; skipped", stored.id)
        return sorted(found.values(), key=_rank, reverse=True)

    async def kev(self) -> dict[str, KevEntry]:
        entries = dict(self._bundled_kev)
        if self._repo is not None:
            for doc in await self._repo.kev():
                try:
                    entry = kev_from_dict(doc)
                except (KeyError, TypeError, ValueError):
                    continue
                entries[entry.cve] = entry
        return entries

    async def find(self, advisory_id: str) -> Advisory | None:
        wanted = advisory_id.strip().upper()
        return next((a for a in await self.advisories() if a.id == wanted), None)

    async def with_cve(self, cve: str) -> list[Advisory]:
        wanted = cve.strip().upper()
        return [a for a in await self.advisories() if wanted in a.cve_ids]

    async def match(
        self, advisories: Iterable[Advisory] | None = None, hosts: Sequence[Host] | None = None
    ) -> list[AdvisoryMatches]:
        chosen = await self.advisories() if advisories is None else list(advisories)
        groups = HostGroups(self.hosts() if hosts is None else hosts)
        judge = Judge(self.catalog)
        kev = await self.kev()
        return [match_advisory(a, groups, judge, kev) for a in chosen]

    async def host_notes(self, host: Host, *, expand: bool = False) -> Sequence[Block]:
        """For ``check``: the advisories this host is vulnerable to (all of them; ``expand`` adds nothing)."""
        rows = []
        for result in await self.match(hosts=[host]):
            cves = [c for c in result.cves if c.hosts(Verdict.VULNERABLE)]
            if not cves:
                continue
            fixed_by = next((o.fixed_by for c in cves for o, _ in c.groups if o.fixed_by), None)
            rows.append(
                (
                    result.advisory.id,
                    "EXPLOITED" if any(c.exploited for c in cves) else "",
                    ", ".join(c.cve for c in cves),
                    fixed_by or "no patch: see the workaround",
                )
            )
        if not rows:
            return ()
        title = f"Security advisories {host.name} is vulnerable to: {len(rows)} (details: `vmsa <id>`)"
        return (Table(("advisory", "exploited", "CVEs", "fixed by"), tuple(rows), title=title),)

    async def closes(self, host: Host, build: int, version: str) -> list[str]:
        """CVEs a host vulnerable now would no longer be vulnerable to on ``build`` (patch previews)."""
        target = replace(host, build=build, version=version)
        before = {
            (m.advisory, m.cve)
            for r in await self.match(hosts=[host])
            for m in r.matches()
            if m.verdict is Verdict.VULNERABLE
        }
        after = {
            (m.advisory, m.cve)
            for r in await self.match(hosts=[target])
            for m in r.matches()
            if m.verdict is Verdict.VULNERABLE
        }
        return sorted(f"{cve} ({advisory})" for advisory, cve in before - after)

    def fixed_builds(self, advisory: Advisory) -> list[tuple[str, str, str]]:
        """(line, fixed version, workaround) rows of the ESXi response matrix, newest line first."""
        rows = []
        for lf in sorted(advisory.lines, key=lambda lf: version_tuple(lf.line), reverse=True):
            fixes = "; ".join(f.label() for f in lf.fixes) or "not given"
            rows.append((f"ESXi {lf.line}", fixes, lf.workaround or "none"))
        return list(dict.fromkeys(rows))

    def announcement(
        self,
        result: AdvisoryMatches,
        kev: dict[str, KevEntry],
        *,
        changed: Sequence[str] = (),
        kev_added: Sequence[str] = (),
    ) -> Reply:
        advisory = result.advisory
        vulnerable = result.hosts(Verdict.VULNERABLE)
        exploited = [c.cve for c in result.cves if c.exploited]
        flag = "EXPLOITED IN THE WILD" if exploited else "not known to be exploited"
        if kev_added:
            what = f"now exploited in the wild ({', '.join(kev_added)} added to CISA KEV)"
        elif changed:
            what = "updated"
        else:
            what = "new advisory"
        head = (
            f"{advisory.id} ({advisory.severity or 'severity ?'}), {what}: {flag}; "
            f"{len(vulnerable)} host{'s' if len(vulnerable) != 1 else ''} vulnerable"
        )
        summary = (f"{head}: {hosts_phrase(vulnerable)}" if vulnerable else head) + exposure_phrase(result)
        style = Style.ERROR if exploited and vulnerable else Style.WARNING if vulnerable else Style.PLAIN
        blocks: list[Block] = [Text(summary, style), Text(advisory.title or "")]
        if changed:
            blocks.append(Text("Changed: " + "; ".join(changed)))
        if exploited:
            blocks.append(Text("; ".join(f"{c}: {kev[c].describe()}" for c in exploited if c in kev)))
        fixes = self.fixed_builds(advisory)
        if fixes:
            blocks.append(Table(("line", "fixed by", "workaround"), tuple(fixes)))
        no_patch = [lf.line for lf in advisory.lines if any(f.state is FixState.NO_PATCH for f in lf.fixes)]
        if no_patch and advisory.workaround:
            blocks.append(
                Text(f"No patch planned for ESXi {', '.join(no_patch)}. Workaround: {advisory.workaround}")
            )
        blocks.append(
            Text(
                f"Every host's verdict: `vmsa {advisory.id}`" + (f" · {advisory.url}" if advisory.url else "")
            )
        )
        data = {"advisory": advisory.id, "vulnerable": vulnerable, "exploited": exploited}
        return Reply(
            summary=summary, blocks=tuple(b for b in blocks if not isinstance(b, Text) or b.text), data=data
        )

    async def announce(
        self, advisory: Advisory, *, key: str, changed: Sequence[str] = (), kev_added: Sequence[str] = ()
    ) -> None:
        """One outbox row per room subscribed to ``security``; then page if exploited and vulnerable."""
        result = (await self.match([advisory]))[0]
        kev = await self.kev()
        if self._outbox is not None:
            reply = self.announcement(result, kev, changed=changed, kev_added=kev_added)
            rooms = await self._outbox.publish(TOPIC, reply, key=key)
            log.info("advisory %s announced to %d room(s) (%s)", advisory.id, len(rooms), key)
        await self.page(result, kev)

    def paging(self) -> bool:
        """Pages go out only with an on-call rotation configured."""
        return self._engine is not None and self._engine.policy.rotation is not None

    async def page(self, result: AdvisoryMatches, kev: dict[str, KevEntry]) -> None:
        """Open the advisory's page when a KEV-listed CVE has vulnerable hosts."""
        if not self.paging() or self._engine is None:
            return
        exploited = [c for c in result.cves if c.exploited]
        vulnerable = list(dict.fromkeys(h for c in exploited for h in c.at_risk()))
        if not vulnerable:
            return  # nothing vulnerable, or only hosts whose configuration keeps them out of reach
        due = [kev[c.cve].due_date for c in exploited if c.cve in kev and kev[c.cve].due_date]
        detail = (
            f"{', '.join(c.cve for c in exploited)} exploited in the wild"
            + (f" (CISA due date {min(d for d in due if d)})" if due else "")
            + f"; {len(vulnerable)} vulnerable: {hosts_phrase(vulnerable)}"
        )
        await self._engine.ingest(
            Signal(
                result.advisory.id,
                PAGE_KIND,
                source="advisories:kev",
                detail=detail,
                severity=Severity.CRITICAL,
            )
        )

    async def reconcile(self) -> int:
        """Resolve advisory pages whose exploited CVEs no longer have a vulnerable host; how many."""
        if self._engine is None:
            return 0
        resolved = 0
        for result in await self.match():
            if await self._engine.alerts.open_for(result.advisory.id, PAGE_KIND) is None:
                continue
            exploited = [c for c in result.cves if c.exploited]
            if not any(c.at_risk() for c in exploited):
                await self._engine.ingest(
                    Signal(
                        result.advisory.id,
                        PAGE_KIND,
                        clear=True,
                        source="advisories",
                        detail="no host is vulnerable any more",
                    )
                )
                resolved += 1
        return resolved
