"""End to end: a local HTTP server publishes a release; a subscribed console room hears it exactly once.

The bot is the real ``App`` (settings ``sources:`` → SourcePoller → ReleaseAnnouncer → Outbox → console
adapter) over one SQLite file, restarted between steps: priming, a 304 without parse, a new release
announced to the outbox by one process and delivered by the next, and nothing repeated after that.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import bot.releases.sources.poller as sources_module
from bot.builds import BuildCatalog
from bot.chat.console import ConsoleAdapter
from bot.clock import FakeClock
from bot.config import Settings
from bot.inventory.demo import demo_inventory
from bot.messages import Command, Conversation, Reply, Table, User
from bot.releases.sources.poller import SourcePoller
from bot.runtime.app import App
from handlers import ALL
from tests.depot_site import serve_depot
from tests.fixtures.feed_site import NOTES, Site, atom, catalog

START = datetime(2021, 9, 1, 8, 0, tzinfo=UTC)
ROOM = Conversation("console", "console", direct=True)


class Parses:
    """Counts the parser calls the poller makes (a 304 must make none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("parse_feed", "parse_catalog", "parse_notes"):
            monkeypatch.setattr(sources_module, name, self._counting(name, getattr(sources_module, name)))

    def _counting(self, name: str, parse: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return parse(*args, **kwargs)

        return counted


def _publish(site: Site, *releases: tuple[str, str, str, str]) -> None:
    """Serve a feed and a catalog listing ``releases`` (key, name, build, date), newest first."""
    site.docs["/feed.atom"] = (
        atom([(key, name, f"{site.base}/notes/{key}.html") for key, name, _, _ in releases]),
        "application/atom+xml",
    )
    site.docs["/catalog.json"] = (
        catalog([(build, name, day) for _, name, build, day in releases]),
        "application/json",
    )


U2C = ("u2c", "ESXi 7.0 Update 2c", "18426014", "2021-08-24")
U2D = ("u2d", "ESXi 7.0 Update 2d", "18538813", "2021-09-14")


@asynccontextmanager
async def _running(tmp_path: Path, site: Site, clock: FakeClock) -> AsyncIterator[tuple[App, io.StringIO]]:
    """One bot process: App over the shared database, a console adapter writing to a buffer."""
    settings = Settings(
        database_url=str(tmp_path / "bot.db"),
        demo=True,
        extra={
            "sources": [
                {"name": "feed", "kind": "atom", "url": f"{site.base}/feed.atom", "interval": 600},
                {"name": "catalog", "kind": "catalog", "url": f"{site.base}/catalog.json"},
            ]
        },
    )
    inventory = demo_inventory(BuildCatalog.bundled(), clock)
    app = await App.open(settings, specs=ALL, clock=clock, inventory=inventory)
    try:
        out = io.StringIO()
        app.add_adapter(ConsoleAdapter("console:ann", clock, stdout=out))
        await app.prepare()
        yield app, out
    finally:
        await app.close()


def _poller(app: App) -> SourcePoller:
    assert app.poller is not None
    return app.poller


async def _say(app: App, text: str) -> Reply:
    return await app.dispatcher.handle(
        Command(User("console:ann"), ROOM, text, sent_at=app.services.clock.now())
    )


async def _deliver(app: App) -> int:
    return await app.outbox.deliver_due(app.adapters, "console")


def _notifications(out: io.StringIO) -> list[str]:
    return out.getvalue().split("[notification ")[1:]


async def test_new_release_reaches_subscribed_room_once_across_restarts(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = Parses(monkeypatch)
    clock = FakeClock(START)
    site.docs["/notes/u2c.html"] = ((NOTES / "esxi-70u2c.html").read_bytes(), "text/html")
    site.docs["/notes/u2d.html"] = ((NOTES / "esxi-70u2d.html").read_bytes(), "text/html")
    _publish(site, U2C)

    # first process: subscribe, prime (what is listed now is old news), then a 304 costs no parse
    async with _running(tmp_path, site, clock) as (app, out):
        assert (await _say(app, "subscribe releases")).ok
        first = await _poller(app).poll_all()
        assert [(r.primed, r.error, len(r.new)) for r in first] == [(True, None, 1), (True, None, 0)]
        assert await _deliver(app) == 0
        parsed = len(parses.calls)
        clock.advance(700)
        again = await _poller(app).poll_all()
        assert [r.not_modified for r in again] == [True, True]
        assert len(parses.calls) == parsed  # 304: no parse
        listing = await _say(app, "sources")
        assert [(s["name"], s["last_error"]) for s in listing.data["sources"]] == [
            ("feed", None),
            ("catalog", None),
        ]
        assert all(s["last_success"] == clock.now().isoformat() for s in listing.data["sources"])
    assert _notifications(out) == []

    # second process: the release appears in the feed and the catalog; the announcement is written
    # to the outbox, and the process stops before delivering it
    _publish(site, U2D, U2C)
    async with _running(tmp_path, site, clock) as (app, out):
        clock.advance(700)
        reports = await _poller(app).poll_all()
        assert [r.build for r in reports[0].new] == [18538813]
        assert reports[1].new == ()  # the catalog learns the same build: no second announcement
    assert _notifications(out) == []

    # third process: delivers the stored notification once; polling again announces nothing
    async with _running(tmp_path, site, clock) as (app, out):
        assert await _deliver(app) == 1
        clock.advance(700)
        await _poller(app).poll_all()
        feed = site.docs["/feed.atom"][0].replace(b"</feed>", b"\n</feed>")
        site.docs["/feed.atom"] = (feed, "application/atom+xml")
        clock.advance(700)
        changed = await _poller(app).poll_all()
        assert changed[0].not_modified is False and changed[0].new == ()
        assert await _deliver(app) == 0
    (notice,) = _notifications(out)
    assert "New release: ESXi 7.0 Update 2d (build 18538813, 2021-09-14): 1 fixes" in notice
    assert "PR 2824750" in notice and "pflex01" in notice
    assert site.hits["/notes/u2d.html"] == 1  # a seen feed entry is not fetched again


async def test_sources_command_shows_failures(tmp_path: Path, site: Site) -> None:
    clock = FakeClock(START)
    _publish(site, U2C)
    site.docs.pop("/catalog.json")  # the server answers 500 for it
    site.docs["/notes/u2c.html"] = ((NOTES / "esxi-70u2c.html").read_bytes(), "text/html")
    async with _running(tmp_path, site, clock) as (app, _):
        await _poller(app).poll_all()
        reply = await _say(app, "sources")
    feed, cat = reply.data["sources"]
    assert feed["last_error"] is None and feed["failures"] == 0
    assert cat["last_success"] is None and cat["failures"] == 1 and "HTTP 500" in cat["last_error"]
    assert reply.summary == "2 release sources, 1 failing"
    table = reply.blocks[0]
    assert isinstance(table, Table)
    row = table.rows[1]
    assert row[:2] == ("catalog", "catalog") and row[3] == "never" and "HTTP 500" in row[4]
    assert "(in " in row[5]  # the next poll is backed off into the future


async def test_new_depot_profile_reaches_the_room_once_across_restarts(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile added to a local HTTP depot → one announcement in the subscribed room, through the
    real App, poller, outbox and console; restarts announce nothing again; the token stays hidden."""
    clock = FakeClock(START)
    token = "tok-e2e-51ab"
    monkeypatch.setenv("ESXBOT_E2E_DEPOT_TOKEN", token)
    serve_depot(site, prefix=f"/{token}")
    settings = Settings(
        database_url=str(tmp_path / "bot.db"),
        demo=True,
        extra={
            "sources": [
                {"name": "depot", "kind": "depot", "url": f"{site.base}/{{token}}/vmw-depot-index.xml",
                 "token": "env:ESXBOT_E2E_DEPOT_TOKEN"}
            ]
        },
    )  # fmt: skip
    outputs = []
    for step in range(3):
        if step == 1:
            serve_depot(site, f"/{token}", ("ESXi-8.0U3e-24674464-standard",))
        app = await App.open(
            settings, specs=ALL, clock=clock, inventory=demo_inventory(BuildCatalog.bundled(), clock)
        )
        try:
            out = io.StringIO()
            app.add_adapter(ConsoleAdapter("console:ann", clock, stdout=out))
            await app.prepare()
            if step == 0:
                assert (await _say(app, "subscribe releases")).ok
            await _poller(app).poll_all()
            await _deliver(app)
            listing = await _say(app, "sources")
            assert token not in str(listing.data) and "{token}" in str(listing.data)
            outputs.append(_notifications(out))
        finally:
            await app.close()
        clock.advance(7200)
    assert outputs[0] == [] and outputs[2] == []
    assert len(outputs[1]) == 1 and "New release: ESXi 8.0 Update 3e (build 24674464" in outputs[1][0]
    assert all(token not in text for texts in outputs for text in texts)
