"""The release world as it is today: ESX 9 names and lines, withdrawn releases, the soak period.

Through the real App and dispatcher (``make_bot``), with a static inventory that holds a 9.0 host,
a host on a withdrawn 7.0 build and a USB-booted 7.0 U2a host; ESX 9 against the vCenter simulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.model import Release
from bot.releases.sources.release_notes import parse_notes
from bot.runtime.app import App
from bot.vsphere.client import VSphere
from bot.vsphere.host_retrieval import release_lookup
from bot.vsphere.session import Endpoint
from tests.fixtures.bot import ADMIN, OPERATOR, MakeBot
from tests.fixtures.vcsim import DEFAULT_MODEL, VcsimFactory

NOTES = Path(__file__).parent / "data" / "notes"

INVENTORY = [
    {"name": "esx90", "build": 24755229, "boot_device": "sd", "cluster": "vcf"},
    {"name": "esx73a", "build": 18825058, "boot_device": "disk", "cluster": "old"},
    {"name": "esx72a", "build": 17867351, "boot_device": "usb", "cluster": "old"},
]


def test_catalog_knows_esx9_and_unified_names() -> None:
    catalog = BuildCatalog.bundled()
    ga = catalog.lookup(24755229)
    assert ga is not None and (ga.name, ga.version, ga.line) == ("ESX 9.0.0.0", "9.0.0", "9.0")
    assert ga.release_date is not None and ga.release_date.isoformat() == "2025-06-17"
    for name in ("ESX 9.0.0.0", "9.0.0.0", "ESXi 9.0", "esx 9.0.0"):
        assert catalog.find(name) == ga, name
    # 8.0 names keep working next to them
    assert catalog.find("8.0 U3d") == catalog.lookup(24585383)
    assert catalog.find("8.0 U2b Hot Patch 1") == catalog.lookup(23465881)
    # every bundled row says where its facts come from
    assert all(k.source for k in catalog), [k.name for k in catalog if not k.source]


def test_catalog_withdrawn_releases_and_replacements() -> None:
    catalog = BuildCatalog.bundled()
    u3b = catalog.find("7.0 U3b")
    assert u3b is not None and u3b.withdrawn and "November 2021" in u3b.withdrawn
    for name in ("7.0 U3", "7.0 U3a", "7.0U3b"):
        pulled = catalog.find(name)
        assert pulled is not None and pulled.withdrawn, name
        assert catalog.replacement(pulled) == catalog.lookup(19193900), name
    u2 = catalog.find("ESXi 7.0 Update 2")
    assert u2 is not None and u2.withdrawn and "335041" in u2.withdrawn
    assert catalog.replacement(u2) == catalog.lookup(17867351)
    assert catalog.latest("7.0") is not None and catalog.latest("7.0").withdrawn is None  # type: ignore[union-attr]
    assert catalog.replacement(catalog.lookup(19193900)) is None  # type: ignore[arg-type]


def test_esx9_release_notes() -> None:
    result = parse_notes((NOTES / "esx-9010.broadcom.html").read_bytes())
    release = result.release
    assert release is not None
    assert (release.name, release.line, release.version, release.build) == (
        "ESX 9.0.1.0",
        "9.0",
        "9.0.1",
        24957456,
    )
    assert release.image_profiles == ("ESXi-9.0.1.0-24957456-standard", "ESXi-9.0.1.0-24957456-no-tools")
    assert [f.pr for f in release.fixes] == ["3412345", "3412399"]
    assert result.warnings == ()


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(INVENTORY))
    return path


async def _save_notes(app: App, release: Release) -> None:
    from bot.store.release_records import ReleaseRepo

    await ReleaseRepo(app.db).save(release, source="test", now=datetime.now(UTC))


async def test_esx9_host_releases_check_and_matching(make_bot: MakeBot, inventory_file: Path) -> None:
    bot = await make_bot(demo=False, inventory_file=str(inventory_file))
    host = next(h for h in bot.app.services.inventory.hosts() if h.name == "esx90")
    assert (host.version, host.release_name) == ("9.0.0", "ESX 9.0.0.0")

    listing = await bot.say("releases 9.0")
    assert [r["name"] for r in listing.data["releases"]] == ["ESX 9.0.0.0"]

    release = parse_notes((NOTES / "esx-9010.broadcom.html").read_bytes()).release
    assert release is not None
    await _save_notes(bot.app, release)
    bot.app.services.catalog.add(release)
    listing = await bot.say("releases 9.0")
    assert [r["name"] for r in listing.data["releases"]] == ["ESX 9.0.1.0", "ESX 9.0.0.0"]

    sd_fix = await bot.say("pr 3412345")
    verdicts = sd_fix.data["verdicts"]
    assert verdicts["esx90"] == "affected"  # SD-booted 9.0 host, build older than 9.0.1.0
    assert verdicts["esx72a"] != "affected"  # a 7.0 host cannot install a 9.0 patch

    check = await bot.say("check esx90")
    assert "ESX 9.0.0.0" in check.summary + json.dumps(check.data) or "ESX 9.0.0.0" in str(check.blocks)
    assert "PR 3412345" in str(check.blocks)


async def test_withdrawn_target_refused_and_check_warns(make_bot: MakeBot, inventory_file: Path) -> None:
    bot = await make_bot(demo=False, inventory_file=str(inventory_file))
    refused = await bot.say("patch esx72a to 7.0 U3b --dry-run", as_user=OPERATOR)
    assert not refused.ok
    assert "withdrawn" in refused.summary and "ESXi 7.0 Update 3c (build 19193900)" in refused.summary

    check = await bot.say("check esx73a")
    warning = " ".join(str(b) for b in check.blocks)
    assert "ESXi 7.0 Update 3a (build 18825058), which VMware withdrew" in warning
    assert "Move to ESXi 7.0 Update 3c (build 19193900)" in warning

    listing = await bot.say("releases 7.0.3")
    status = {r["name"]: r["status"] for r in listing.data["releases"]}
    assert status["ESXi 7.0 Update 3b"] == "withdrawn, use ESXi 7.0 Update 3c"
    assert status["ESXi 7.0 Update 3c"] == ""


async def test_too_young_release_needs_fresh(make_bot: MakeBot, inventory_file: Path) -> None:
    bot = await make_bot(demo=False, inventory_file=str(inventory_file))
    today = bot.clock.now().date()
    young = Release("7.0", "ESXi 7.0 Update 3z", 99999901, today - timedelta(days=3), version="7.0.3")
    bot.app.services.catalog.add(young)
    asked = await bot.say("patch esx73a to 7.0 U3z --dry-run")
    assert not asked.ok
    assert "3 days old (soak 14 days)" in asked.summary and "--fresh" in asked.summary
    fresh = await bot.say("patch esx73a to 7.0 U3z --dry-run --fresh")
    assert "Target ESXi 7.0 Update 3z (build 99999901)" in str(fresh.blocks)
    listing = await bot.say("releases 7.0 U3z")
    assert listing.data["releases"][0]["status"] == "new: 3 days old (soak 14 days)"
    # without `to`, the newest release outside the soak period is chosen
    default = await bot.say("patch esx73a --dry-run")
    assert "Target ESXi 7.0 Update 3v (build 24723872)" in str(default.blocks)


async def test_release_withdraw_is_admin_only_audited_and_survives_restart(
    make_bot: MakeBot, inventory_file: Path
) -> None:
    bot = await make_bot(demo=False, inventory_file=str(inventory_file))
    denied = await bot.say('release withdraw "7.0 U3c" bad batch', as_user=OPERATOR)
    assert not denied.ok
    done = await bot.say('release withdraw "7.0 U3c" bad batch --instead 7.0U3d', as_user=ADMIN)
    assert done.ok and done.data == {"build": 19193900, "withdrawn": "bad batch", "replaced_by": 19482537}
    audit = await bot.app.services.store.audit.recent(5)
    assert any(e.command == "release" and e.outcome == "ok" for e in audit)
    await bot.app.close()

    again = await make_bot(demo=False, inventory_file=str(inventory_file))
    refused = await again.say("patch esx72a to 7.0 U3c --dry-run")
    assert "withdrawn by VMware: bad batch" in refused.summary
    assert "ESXi 7.0 Update 3d (build 19482537)" in refused.summary


async def test_esx9_host_from_the_vcenter_simulator(vcsim_factory: VcsimFactory) -> None:
    model = json.loads(json.dumps(DEFAULT_MODEL))
    model["hosts"].append({"name": "esx-vcf9-05.lab.local", "version": "9.0.0", "build": "24755229"})
    model["hosts_per_cluster"] = 5
    lab = vcsim_factory(model=model)
    vc = VSphere(
        Endpoint("vc1", lab.host, lab.user, lab.password, port=lab.port, timeout=5, ca_file=str(lab.ca_file)),
        release=release_lookup(BuildCatalog.bundled()),
        wait_seconds=1,
        backoff=(0.1, 0.5),
    )
    try:
        await vc.refresh()
        host = next(h for h in vc.hosts() if h.name == "esx-vcf9-05.lab.local")
        assert (host.version, host.build, host.release_name) == ("9.0.0", 24755229, "ESX 9.0.0.0")
    finally:
        await vc.close()
