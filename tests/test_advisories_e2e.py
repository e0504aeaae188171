"""End to end: a local HTTP server publishes advisories; a subscribed console room hears each change once.

The bot is the real ``App`` (``sources:`` of kinds vmsa-list and kev → AdvisoryPoller → AdvisoryService
→ Outbox → console adapter, and the alert engine for pages) over one SQLite file, restarted between
steps: priming, an unchanged list that costs no parse, a new advisory told once across a restart, a
revised page told once as "updated", and a CVE newly in KEV re-announced and paged until patched.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import bot.advisories.poller as poller_module
from bot.advisories.poller import AdvisoryPoller
from bot.builds import BuildCatalog
from bot.chat.console import ConsoleAdapter
from bot.clock import FakeClock
from bot.config import AuthSettings, Settings
from bot.inventory.demo import demo_inventory
from bot.inventory.merged import Freshness
from bot.messages import Command, Conversation, Reply, Table, User
from bot.model import Host
from bot.runtime.app import App
from handlers import ALL
from tests.alert_harness import ONCALL
from tests.fixtures.feed_site import Site

START = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
ROOM = Conversation("console", "console", direct=True)
DATA = Path(__file__).parent / "data" / "advisories"
PAGES = Path(__file__).parents[1] / "bot" / "data" / "advisories"


class Fleet:
    """An inventory the test can patch between polls."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self.list = list(hosts)

    def hosts(self) -> Sequence[Host]:
        return tuple(self.list)

    def freshness(self) -> Sequence[Freshness]:
        return (Freshness(source="test", refreshed_at=START),)


class Parses:
    """Counts the parser calls the poller makes (an unchanged list must make none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("parse_list", "parse_page", "parse_kev"):
            monkeypatch.setattr(poller_module, name, self._counting(name, getattr(poller_module, name)))

    def _counting(self, name: str, parse: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return parse(*args, **kwargs)

        return counted


def _list(site: Site, *ids: str) -> None:
    rows = json.loads((DATA / "list.json").read_text().replace("{base}", site.base))
    rows["data"]["list"] = [r for r in rows["data"]["list"] if r["title"].split(":")[0] in ids]
    site.docs["/advisories/list#0"] = (json.dumps(rows).encode(), "application/json")


def _kev(site: Site, *cves: str) -> None:
    doc = json.loads((PAGES / "kev.json").read_text())
    doc["vulnerabilities"] = [v for v in doc["vulnerabilities"] if v["cveID"] in cves]
    site.docs["/kev.json"] = (json.dumps(doc).encode(), "application/json")


def _pages(site: Site) -> None:
    for page in PAGES.glob("*.html"):
        site.docs[f"/advisories/{page.name}"] = (page.read_bytes(), "text/html")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same flow over a SQLite file and over a real PostgreSQL (the migrations of both dialects)."""
    if request.param == "sqlite":
        return str(tmp_path / "bot.db")
    return str(request.getfixturevalue("pg_url"))


@asynccontextmanager
async def _running(
    database: str, site: Site, clock: FakeClock, fleet: Fleet
) -> AsyncIterator[tuple[App, io.StringIO]]:
    settings = Settings(
        database_url=database,
        demo=False,  # no bundled advisories: everything comes from the local server
        auth=AuthSettings(roles={"console:ann": "admin"}),
        extra={
            "sources": [
                {"name": "vmsa", "kind": "vmsa-list", "url": f"{site.base}/advisories/list", "interval": 600},
                {"name": "kev", "kind": "kev", "url": f"{site.base}/kev.json", "interval": 600},
            ],
            "oncall": ONCALL,
        },
    )
    app = await App.open(settings, specs=ALL, clock=clock, inventory=fleet)
    try:
        out = io.StringIO()
        app.add_adapter(ConsoleAdapter("console:ann", clock, stdout=out))
        await app.prepare()
        yield app, out
    finally:
        await app.close()


def _poller(app: App) -> AdvisoryPoller:
    assert app.advisory_poller is not None
    return app.advisory_poller


async def _say(app: App, text: str) -> Reply:
    return await app.dispatcher.handle(
        Command(User("console:ann"), ROOM, text, sent_at=app.services.clock.now())
    )


async def _deliver(app: App) -> int:
    """Deliver everything pending (the outbox sends one row per room per round); how many."""
    total = 0
    while sent := await app.outbox.deliver_due(app.adapters, "console"):
        total += sent
    return total


def _notifications(out: io.StringIO) -> list[str]:
    return out.getvalue().split("[notification ")[1:]


async def test_advisories_reach_a_subscribed_room_once_across_restarts(
    database_url: str, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = Parses(monkeypatch)
    clock = FakeClock(START)
    fleet = Fleet(demo_inventory(BuildCatalog.bundled(), clock).hosts())
    _pages(site)
    _list(site, "VMSA-2024-0006", "VMSA-2024-0013")
    _kev(site, "CVE-2024-37085")

    # first process: subscribe; the first poll primes (old news is stored, not told); an unchanged
    # list and KEV then cost no parse
    async with _running(database_url, site, clock, fleet) as (app, out):
        assert (await _say(app, "subscribe security")).ok
        assert (await _say(app, "subscribe alerts")).ok
        first = await _poller(app).poll_all()
        assert [(r.source, r.primed, r.error, sorted(r.new)) for r in first] == [
            ("vmsa", True, None, ["VMSA-2024-0006", "VMSA-2024-0013"]),
            ("kev", True, None, []),
        ]
        assert first[1].kev_added == ("CVE-2024-37085",)
        assert await _deliver(app) == 0
        parsed = len(parses.calls)
        clock.advance(700)
        again = await _poller(app).poll_all()
        assert [(r.not_modified, r.parsed) for r in again] == [(True, 0), (True, 0)]
        assert len(parses.calls) == parsed
        assert site.full["/advisories/list#0"] == 1 and site.hits["/advisories/list#0"] == 2
        listing = await _say(app, "advisories")
        assert [a["id"] for a in listing.data["advisories"]] == ["VMSA-2024-0013", "VMSA-2024-0006"]
    assert _notifications(out) == []

    # second process: a new advisory is listed; its message is written to the outbox and the
    # process stops before delivering it
    _list(site, "VMSA-2025-0004", "VMSA-2024-0006", "VMSA-2024-0013", "VMSA-2026-0007")
    async with _running(database_url, site, clock, fleet) as (app, out):
        clock.advance(700)
        reports = await _poller(app).poll_all()
        assert reports[0].new == ("VMSA-2025-0004",)  # the Workstation-only VMSA-2026-0007 is skipped
    assert _notifications(out) == []
    assert "/advisories/VMSA-2026-0007.html" not in site.hits

    # third process: delivers it once; polling again tells nothing
    async with _running(database_url, site, clock, fleet) as (app, out):
        assert await _deliver(app) == 1
        clock.advance(700)
        await _poller(app).poll_all()
        assert await _deliver(app) == 0
    (notice,) = _notifications(out)
    assert "VMSA-2025-0004 (critical), new advisory: not known to be exploited; 9 hosts vulnerable" in notice
    assert "ESXi 7.0 Update 3s (24585291)" in notice and "ESXi 8.0 Update 3d (24585383)" in notice
    assert site.hits["/advisories/VMSA-2025-0004.html"] == 1

    # the page is revised (a hypothetical revision 1.1 naming another 8.0 U2 build) and the list
    # row's updated time moves: exactly one "updated" message saying what changed
    revised = (
        (PAGES / "VMSA-2025-0004.html").read_bytes().replace(b"ESXi80U2d-24585300", b"ESXi80U2e-24614434")
    )
    revised = revised.replace(
        b"<p>1.0 2025-03-04", b"<p>1.1 2025-03-10 Added the 8.0 U2e build.</p><p>1.0 2025-03-04"
    )
    site.docs["/advisories/VMSA-2025-0004.html"] = (revised, "text/html")
    rows = json.loads(site.docs["/advisories/list#0"][0])
    rows["data"]["list"][0]["updated"] = "2025-03-10T09:00:00.000000"
    site.docs["/advisories/list#0"] = (json.dumps(rows).encode(), "application/json")
    async with _running(database_url, site, clock, fleet) as (app, out):
        clock.advance(700)
        reports = await _poller(app).poll_all()
        assert reports[0].updated == ("VMSA-2025-0004",)
        clock.advance(700)
        await _poller(app).poll_all()
        assert await _deliver(app) == 1

        # KEV lists the VMCI CVE: the advisory is announced again as exploited, and with on-call
        # configured a page opens for it
        _kev(site, "CVE-2024-37085", "CVE-2025-22224")
        clock.advance(700)
        reports = await _poller(app).poll_all()
        assert reports[1].kev_added == ("CVE-2025-22224",)
        assert await _deliver(app) == 1
        alerts = await _say(app, "alerts")
        (page,) = alerts.data["alerts"]
        assert (page["host"], page["kind"]) == ("VMSA-2025-0004", "exploited-vulnerability")
        assert app.services.alerts is not None
        clock.advance(31)  # past `for`: the alert fires and opens its group
        await app.services.alerts.tick()
        clock.advance(11)  # past the group's `group_wait`: the page goes out
        await app.services.alerts.tick()
        assert await _deliver(app) == 1
        assert (await _say(app, f"ack {page['id']}")).ok
        await _deliver(app)

        # every host patched to a fixed build: the page resolves on the next poll
        catalog = app.services.catalog
        fixed = {"7.0": catalog.lookup(24585291), "8.0": catalog.lookup(24585383)}
        fleet.list = [
            replace(h, build=k.build, version=k.version)
            for h in fleet.list
            if (k := fixed[".".join((h.version or "").split(".")[:2])]) is not None
        ]
        clock.advance(700)
        await _poller(app).poll_all()
        assert (await _say(app, "alerts")).data.get("alerts", []) == []
        await _deliver(app)
    texts = _notifications(out)  # this process's room: the update, the KEV news, the page
    updated = texts[0]
    assert "VMSA-2025-0004 (critical), updated" in updated
    assert "revision 1.0 → 1.1" in updated and "ESXi 8.0 Update 2e (24614434)" in updated
    exploited = texts[1]
    assert "now exploited in the wild (CVE-2025-22224 added to CISA KEV)" in exploited
    assert "EXPLOITED IN THE WILD; 9 hosts vulnerable" in exploited
    paged = texts[2]
    assert "CRITICAL: VMSA-2025-0004 has a CVE exploited in the wild, and hosts are vulnerable to it" in paged
    assert "Paging " in paged and "CVE-2025-22224 exploited in the wild (CISA due date 2025-03-25)" in paged
    assert "shutdown" not in paged and "not in the inventory" not in paged
    assert "RESOLVED" in out.getvalue() and "no host is vulnerable any more" in out.getvalue()


@pytest.mark.parametrize(
    ("failure", "said"),
    [("missing", "HTTP 500"), ("50 MB", "exceeds the 8388608-byte cap"), ("no matrix", "no response matrix")],
)
async def test_a_failing_advisory_page_is_fetched_again_and_told_once(
    tmp_path: Path, site: Site, failure: str, said: str
) -> None:
    database_url = str(tmp_path / "bot.db")
    clock = FakeClock(START)
    fleet = Fleet(demo_inventory(BuildCatalog.bundled(), clock).hosts())
    _pages(site)
    _list(site, "VMSA-2024-0006")
    _kev(site)
    async with _running(database_url, site, clock, fleet) as (app, out):
        assert (await _say(app, "subscribe security")).ok
        await _poller(app).poll_all()
        page = site.docs.pop("/advisories/VMSA-2024-0013.html")  # missing: the server answers 500
        if failure == "50 MB":
            site.docs["/advisories/VMSA-2024-0013.html"] = (page[0] + b" " * 50 * 1024 * 1024, "text/html")
        elif failure == "no matrix":
            cut = page[0][: page[0].index(b"<h3>Response Matrix")]
            site.docs["/advisories/VMSA-2024-0013.html"] = (cut, "text/html")
        _list(site, "VMSA-2024-0006", "VMSA-2024-0013")
        clock.advance(700)
        reports = await _poller(app).poll_all()
        assert reports[0].error is None and reports[0].new == ("VMSA-2024-0013",)
        assert said in " ".join(reports[0].warnings)
        if failure != "no matrix":  # a page that could not be read is asked for again
            site.docs["/advisories/VMSA-2024-0013.html"] = page
            _list(site, "VMSA-2024-0006", "VMSA-2024-0013")
            clock.advance(700)
            reports = await _poller(app).poll_all()
            assert reports[0].updated == ("VMSA-2024-0013",)
        clock.advance(700)
        await _poller(app).poll_all()
        await _deliver(app)
        vmsa = await _say(app, "vmsa VMSA-2024-0013")
    texts = _notifications(out)
    if failure == "no matrix":  # what could be read is told once; verdicts say the fixes are unknown
        assert len(texts) == 1 and "0 hosts vulnerable" in texts[0]
        assert "the advisory's fixed versions are not known yet" in str(vmsa.blocks)
        return
    assert len(texts) == 2  # first without fixed versions, then once more when the page could be read
    assert "No patch planned for ESXi 7.0" in texts[1]


async def test_single_page_and_cve_record_sources(tmp_path: Path, site: Site) -> None:
    """``vmsa`` (one page) and ``cve`` (one record) sources: the record fills in what the page lacks."""
    clock = FakeClock(START)
    fleet = Fleet(demo_inventory(BuildCatalog.bundled(), clock).hosts())
    page = (PAGES / "VMSA-2024-0006.html").read_text()
    row_70 = next(line for line in page.splitlines() if "ESXi70U3p" in line)
    site.docs["/vmsa.html"] = (page.replace(row_70, "").encode(), "text/html")  # a page without its 7.0 row
    record = json.loads((DATA / "CVE-2024-22252.json").read_text())
    site.docs["/cve.json"] = (json.dumps(record).encode(), "application/json")
    settings = Settings(
        database_url=str(tmp_path / "bot.db"),
        demo=False,
        auth=AuthSettings(roles={"console:ann": "admin"}),
        extra={
            "sources": [
                {"name": "page", "kind": "vmsa", "url": f"{site.base}/vmsa.html"},
                {"name": "record", "kind": "cve", "url": f"{site.base}/cve.json"},
            ]
        },
    )
    app = await App.open(settings, specs=ALL, clock=clock, inventory=fleet)
    try:
        out = io.StringIO()
        app.add_adapter(ConsoleAdapter("console:ann", clock, stdout=out))
        assert (await _say(app, "subscribe security")).ok
        reports = await _poller(app).poll_all()
        assert [(r.new, r.updated, r.error) for r in reports] == [
            (("VMSA-2024-0006",), (), None),
            ((), ("VMSA-2024-0006",), None),
        ]
        assert "affected[0].versions[0]: version '8.0 ' trimmed" in reports[1].warnings
        clock.advance(4000)
        again = await _poller(app).poll_all()
        assert [(r.not_modified, r.parsed) for r in again] == [(True, 0), (True, 0)]
        cve = await _say(app, "cve CVE-2024-22252")
        esx01 = next(r for b in cve.blocks if isinstance(b, Table) for r in b.rows if r[0] == "esx01")
        assert esx01[1:4] == ("vulnerable", "all", "ESXi 7.0 Update 3p (23307199)")  # from the record
        other = await _say(app, "cve CVE-2024-22254")
        esx01 = next(r for b in other.blocks if isinstance(b, Table) for r in b.rows if r[0] == "esx01")
        assert esx01[1] == "not-applicable"  # the page lists no 7.0 fix for it and no record says more
        assert "in VMSA-2024-0006, CVSSv3 8.4" in str(
            cve.blocks
        )  # the page's ESXi score, not the record's 9.3
        assert await _deliver(app) == 0  # both sources were priming
    finally:
        await app.close()
