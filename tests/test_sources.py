"""Sources against a local HTTP server: conditional GET, 304 without parse, priming, backoff, dedupe."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.clock import FakeClock
from bot.model import Release
from bot.releases.sources.fetch import Fetcher
from bot.releases.sources.poller import SourceConfig, SourceKind, SourcePoller, parse_sources
from bot.store.release_records import ReleaseRepo
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.fixtures.feed_site import NOTES, Site, atom, catalog


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    await migrate(database)
    yield database
    await database.close()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, int]] = []

    async def __call__(self, release: Release, *, update: bool) -> None:
        self.calls.append((release.build, update, len(release.fixes)))


async def _poller(site: Site, db: Database, sources: list[SourceConfig], told: Recorder) -> SourcePoller:
    fetcher = Fetcher.create(timeout=5)
    return SourcePoller(
        sources,
        fetcher,
        ReleaseRepo(db),
        FakeClock(),
        BuildCatalog.bundled(),
        announce=told,
        rng=random.Random(1),
    )


async def test_feed_catalog_and_notes_flow(site: Site, db: Database) -> None:
    u2c = (NOTES / "esxi-70u2c.html").read_bytes()
    u2d = (NOTES / "esxi-70u2d.html").read_bytes()
    site.docs["/feed.atom"] = (
        atom([("u2c", "ESXi 7.0 Update 2c", f"{site.base}/notes/u2c.html")]),
        "application/atom+xml",
    )
    site.docs["/notes/u2c.html"] = (u2c, "text/html")
    site.docs["/catalog.json"] = (
        catalog([("18426014", "ESXi 7.0 Update 2c", "2021-08-24")]),
        "application/json",
    )
    sources = parse_sources(
        [
            {"name": "feed", "kind": "atom", "url": f"{site.base}/feed.atom"},
            {"name": "cat", "kind": "catalog", "url": f"{site.base}/catalog.json", "interval": 600},
        ]
    )
    told = Recorder()
    poller = await _poller(site, db, sources, told)
    first = await poller.poll_all()
    assert all(r.primed and r.error is None for r in first)  # first poll primes silently
    assert told.calls == []
    # unchanged: 304, no parse, no notification
    again = await poller.poll_all()
    assert all(r.not_modified for r in again)
    assert site.full["/feed.atom"] == 1 and site.full["/catalog.json"] == 1
    # a new release appears in both the feed and the catalog: exactly one announcement, with fixes
    site.docs["/notes/u2d.html"] = (u2d, "text/html")
    site.docs["/feed.atom"] = (
        atom(
            [
                ("u2d", "ESXi 7.0 Update 2d", f"{site.base}/notes/u2d.html"),
                ("u2c", "ESXi 7.0 Update 2c", f"{site.base}/notes/u2c.html"),
            ]
        ),
        "application/atom+xml",
    )
    site.docs["/catalog.json"] = (
        catalog(
            [
                ("18538813", "ESXi 7.0 Update 2d", "2021-09-14"),
                ("18426014", "ESXi 7.0 Update 2c", "2021-08-24"),
            ]
        ),
        "application/json",
    )
    reports = await poller.poll_all()
    assert [r.build for r in reports[0].new] == [18538813]
    assert told.calls == [(18538813, False, 1)]
    assert site.hits["/notes/u2c.html"] == 1  # seen entries are not fetched again
    stored = await ReleaseRepo(db).get(18538813)
    assert stored is not None and [f.pr for f in stored.fixes] == ["2824750"]
    await poller._fetcher.close()
    # a restart (new poller, same database) neither re-announces nor refetches seen entries
    told2 = Recorder()
    poller2 = await _poller(site, db, sources, told2)
    assert await poller2.restore() >= 2
    await poller2.poll_all()
    assert told2.calls == []
    await poller2._fetcher.close()


async def test_errors_back_off_and_malformed_is_skipped(
    site: Site, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    site.docs["/bad.atom"] = (b"<feed><entry><title>broken", "application/atom+xml")
    site.docs["/bad.html"] = (b"<html><body><p>nothing here</p></body></html>", "text/html")
    sources = [
        SourceConfig("down", SourceKind.CATALOG, f"{site.base}/missing.json", 600),
        SourceConfig("bad-feed", SourceKind.ATOM, f"{site.base}/bad.atom", 600),
        SourceConfig("bad-page", SourceKind.NOTES, f"{site.base}/bad.html", 600),
    ]
    told = Recorder()
    poller = await _poller(site, db, sources, told)
    with caplog.at_level(logging.WARNING):
        reports = await poller.poll_all()
        await poller.poll(sources[0])
    assert [r.error is not None for r in reports] == [True, True, True]
    assert "HTTP 500" in (reports[0].error or "")
    states = {source.name: state for source, state in await poller.states()}
    assert states["down"].failures == 2 and states["down"].last_error
    assert states["bad-feed"].failures == 1 and states["bad-feed"].next_poll is not None
    assert any("source down failed" in r.message for r in caplog.records)
    assert told.calls == []
    await poller._fetcher.close()


async def test_size_cap(site: Site) -> None:
    site.docs["/big.json"] = (b"x" * 200_000, "application/json")
    fetcher = Fetcher.create(max_bytes=100_000)
    with pytest.raises(Exception, match="cap"):
        await fetcher.get(f"{site.base}/big.json")
    await fetcher.close()


def test_source_config_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        parse_sources([{"kind": "rss2", "url": "http://x"}])
    with pytest.raises(ValueError, match="interval"):
        parse_sources([{"kind": "atom", "url": "http://x", "interval": 5}])
    assert parse_sources([{"kind": "notes", "url": "https://x/y", "enabled": False}])[0].enabled is False
