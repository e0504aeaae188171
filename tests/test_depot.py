"""The depot source (kind: depot) against a local HTTP depot and an offline directory depot."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import re
import sys
import zipfile
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.clock import FakeClock
from bot.model import Release
from bot.releases.offline_cli import sources_poll_once
from bot.releases.sources.depot import parse_profile_name, read_bundle, releases_of
from bot.releases.sources.fetch import Fetcher
from bot.releases.sources.poller import SourcePoller, parse_sources
from bot.store.release_records import ReleaseRepo
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.depot_site import DEPOT, metadata_zip, serve_depot
from tests.fixtures.feed_site import Site
from tests.shared_data import shared_file

TOKEN = "tok-3f9a1c77e2"  # a stand-in for a Broadcom download token
ZIP = "/vmw/vmw-ESXi-metadata.zip"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    await migrate(database)
    yield database
    await database.close()


class Told:
    def __init__(self) -> None:
        self.releases: list[Release] = []

    async def __call__(self, release: Release, *, update: bool) -> None:
        self.releases.append(release)


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    client = Fetcher.create(timeout=5)
    yield client
    await client.close()


def _poller(db: Database, entries: list[object] | str, told: Told, fetcher: Fetcher) -> SourcePoller:
    return SourcePoller(
        parse_sources(entries),  # type: ignore[arg-type]
        fetcher,
        ReleaseRepo(db),
        FakeClock(),
        BuildCatalog.bundled(),
        announce=told,
        rng=random.Random(1),
    )


def test_bundle_to_releases() -> None:
    profiles, bulletins, warnings = read_bundle(metadata_zip(), "test.zip")
    releases = {r.name: r for r in releases_of(profiles, bulletins)}
    assert sorted(releases) == [
        "ESX 9.0.0.0",
        "ESXi 7.0 Update 2c (Security Only)",
        "ESXi 8.0 Update 2d",
        "ESXi 8.0 Update 3d",
    ]
    u3d = releases["ESXi 8.0 Update 3d"]
    assert (u3d.build, u3d.line, u3d.version, str(u3d.release_date)) == (
        24585383,
        "8.0",
        "8.0.3",
        "2025-03-04",
    )
    assert u3d.image_profiles == ("ESXi-8.0U3d-24585383-no-tools", "ESXi-8.0U3d-24585383-standard")
    assert u3d.notes_url == "https://knowledge.broadcom.com/external/article/316595"
    assert (releases["ESX 9.0.0.0"].line, releases["ESX 9.0.0.0"].version) == ("9.0", "9.0.0")
    assert releases["ESXi 7.0 Update 2c (Security Only)"].build == 18295176
    assert warnings == ["test.zip: image profile 'Vendor-Custom-Image-v1' not understood: skipped"]


def test_every_real_profile_name_of_the_online_depot_parses() -> None:
    listing = shared_file("feeds/esxcli-software-sources-profile-list.7.0.txt")
    names = [line.split()[0] for line in listing.read_text().splitlines() if line.startswith("ESXi-")]
    assert len(names) >= 8
    for name in names:
        profile = parse_profile_name(name)
        assert profile is not None, name
        assert profile.line == "7.0" and str(profile.build) in name
        assert profile.security_only == (re.search(r"U\d+s", name) is not None)


async def test_new_profile_announced_once_unchanged_depot_costs_304s_and_no_unzip(
    site: Site, db: Database, fetcher: Fetcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    serve_depot(site, prefix=f"/{TOKEN}/PROD/COMP/ESX_HOST/main")
    url = f"{site.base}/{{token}}/PROD/COMP/ESX_HOST/main/vmw-depot-index.xml"
    entries = [{"name": "depot", "kind": "depot", "url": url, "token": "env:ESXBOT_TEST_DEPOT_TOKEN"}]
    told = Told()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ESXBOT_TEST_DEPOT_TOKEN", TOKEN)
        poller = _poller(db, entries, told, fetcher)
        first = await poller.poll(poller.sources[0])
        assert first.primed and len(first.new) == 4 and told.releases == []  # priming announces nothing
        zip_path = f"/{TOKEN}/PROD/COMP/ESX_HOST/main{ZIP}"
        assert site.full[zip_path] == 1

        second = await poller.poll(poller.sources[0])
        assert second.not_modified and site.full[zip_path] == 1 and site.hits[zip_path] == 2

        serve_depot(site, f"/{TOKEN}/PROD/COMP/ESX_HOST/main", ("ESXi-8.0U3e-24674464-standard",))
        third = await poller.poll(poller.sources[0])
        assert [r.name for r in third.new] == ["ESXi 8.0 Update 3e"]
        assert [r.build for r in told.releases] == [24674464]

        restarted = _poller(db, entries, told, fetcher)  # a restart: validators and announcements are stored
        await restarted.restore()
        again = await restarted.poll(restarted.sources[0])
        assert again.error is None and told.releases[1:] == []
        assert site.full[zip_path] == 2

        del site.docs[f"/{TOKEN}/PROD/COMP/ESX_HOST/main/vmw/vmw-esx-index.xml"]  # the vendor index fails
        site.docs[f"/{TOKEN}/PROD/COMP/ESX_HOST/main/vmw-depot-index.xml"] = (
            (DEPOT / "vmw-depot-index.xml").read_bytes() + b"\n",
            "text/xml",
        )
        broken = await restarted.poll(restarted.sources[0])
        text, _ = await sources_poll_once(restarted)
    assert broken.warnings and all(TOKEN not in w for w in broken.warnings)
    assert TOKEN not in text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]  # not the test server's
    assert ours and all(TOKEN not in line for line in ours)
    assert TOKEN not in repr(restarted.sources[0])


async def test_offline_directory_depot(tmp_path: Path, db: Database, fetcher: Fetcher) -> None:
    depot = tmp_path / "depot"
    (depot / "vmw").mkdir(parents=True)
    (depot / "vmw-depot-index.xml").write_bytes((DEPOT / "vmw-depot-index.xml").read_bytes())
    (depot / "vmw" / "vmw-esx-index.xml").write_bytes((DEPOT / "vmw" / "vmw-esx-index.xml").read_bytes())
    (depot / "vmw" / "vmw-ESXi-metadata.zip").write_bytes(metadata_zip())
    told = Told()
    poller = _poller(db, [{"name": "mirror", "kind": "depot", "url": str(depot)}], told, fetcher)
    first = await poller.poll(poller.sources[0])
    assert first.error is None and len(first.new) == 4
    assert (await poller.poll(poller.sources[0])).not_modified


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return out.getvalue()


def test_bad_bundles_are_warnings_never_crashes() -> None:
    good = metadata_zip()
    truncated = read_bundle(good[: len(good) // 2], "cut.zip")
    assert truncated[0] == [] and "not a readable zip" in truncated[2][0]

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bundle, bundle.open("vmware.xml", "w") as member:
        for _ in range(40):
            member.write(b"\0" * (1 << 20))  # 40 MiB of zeros: ~40 KiB packed
    assert len(bomb.getvalue()) < 200_000
    refused = read_bundle(bomb.getvalue(), "bomb.zip")
    assert refused[0] == [] and "more than allowed" in refused[2][0]

    odd = _zip(
        {
            "vmware.xml": b"<metadataResponse><bulletin><id>x</id><new/></bulletin><wat/></metadataResponse>",
            "profiles/a.xml": b"<imageProfile><name>ESXi-8.0U3x-notabuild-standard</name></imageProfile>",
            "profiles/b.xml": b"<imageProfile><name>ESXi-8.0U3d-24585383-standard</name>",
        }
    )
    profiles, bulletins, warnings = read_bundle(odd, "odd.zip")
    assert profiles == [] and [b.id for b in bulletins] == ["x"]
    assert any("not understood" in w for w in warnings) and any("not XML" in w for w in warnings)


def test_public_preset_and_token_rules() -> None:
    sources = parse_sources("public")
    assert [(s.name, s.kind.value, s.url) for s in sources] == [
        ("public-catalog", "catalog", "https://www.virten.net/repo/esxiReleases.json"),
        (
            "public-advisories",
            "vmsa-list",
            "https://support.broadcom.com/web/ecx/security-advisory/-/securityadvisory/getSecurityAdvisoryList",
        ),
        (
            "public-kev",
            "kev",
            "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
        ),
    ]
    with_depot = parse_sources(
        [{"preset": "public", "token": "env:BROADCOM_TOKEN", "mirror": "http://127.0.0.1:9"}]
    )
    assert [s.url for s in with_depot] == [
        "http://127.0.0.1:9/repo/esxiReleases.json",
        "http://127.0.0.1:9/web/ecx/security-advisory/-/securityadvisory/getSecurityAdvisoryList",
        "http://127.0.0.1:9/sites/default/files/feeds/known_exploited_vulnerabilities.json",
        "http://127.0.0.1:9/{token}/PROD/COMP/ESX_HOST/main/vmw-depot-index.xml",
    ]
    with pytest.raises(ValueError, match="holds \\{token\\}"):
        parse_sources([{"kind": "depot", "url": "https://dl.example/{token}/index.xml"}])
    with pytest.raises(ValueError, match="secret reference"):
        parse_sources([{"kind": "depot", "url": "https://x/{token}/i.xml", "token": TOKEN}])
    with pytest.raises(ValueError, match="only a depot"):
        parse_sources([{"kind": "catalog", "url": "https://x/c.json", "token": "env:X"}])


async def test_cli_polls_the_public_preset_against_recorded_copies(site: Site, tmp_path: Path) -> None:
    """`esxbot sources poll --once` with `sources: public` and a mirror serving recorded copies."""
    recorded = shared_file("feeds/virten-esxiReleases.2020-02-20.json").read_bytes()
    site.docs["/repo/esxiReleases.json"] = (recorded, "application/json")
    advisories = shared_file("feeds/broadcom-vmsa-getSecurityAdvisoryList.response.json").read_bytes()
    listing = "/web/ecx/security-advisory/-/securityadvisory/getSecurityAdvisoryList"
    site.docs[f"{listing}#0"] = (advisories, "application/json")  # the recorded first page
    empty = json.dumps({"success": True, "data": {"list": []}}).encode()
    for page in range(1, 60):  # the recorded answer counts the whole real list: later pages are empty here
        site.docs[f"{listing}#{page}"] = (empty, "application/json")
    kev = Path(__file__).parents[1] / "bot" / "data" / "advisories" / "kev.json"
    site.docs["/sites/default/files/feeds/known_exploited_vulnerabilities.json"] = (
        kev.read_bytes(),
        "application/json",
    )
    serve_depot(site, prefix=f"/{TOKEN}/PROD/COMP/ESX_HOST/main")
    config = tmp_path / "esxbot.yaml"
    config.write_text(
        f"database_url: {tmp_path / 'bot.db'}\n"
        f"sources: [{{preset: public, mirror: '{site.base}', token: 'file:{tmp_path / 'token'}'}}]\n"
    )
    (tmp_path / "token").write_text(TOKEN + "\n")
    argv = [sys.executable, "-m", "bot", "--config", str(config), "sources", "poll", "--once"]
    done = await asyncio.create_subprocess_exec(*argv, stdout=PIPE, stderr=PIPE, cwd=tmp_path)
    out, err = await asyncio.wait_for(done.communicate(), 60)
    text = out.decode() + err.decode()
    assert done.returncode == 0, text
    assert "public-catalog: " in text and "(first poll: stored, not announced)" in text
    assert "public-depot: 4 new" in text and "ESX 9.0.0.0 build 24755229" in text
    assert "public-advisories: " in text and "public-kev: " in text
    assert TOKEN not in text
