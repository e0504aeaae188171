"""The advisory commands, `subscribe security`, and the advisory notes of `check` and `patch`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.messages import Fields, Table, Text
from tests.alert_harness import ONCALL
from tests.fixtures.bot import OPERATOR, VIEWER, MakeBot
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import lab_bot

LAB_70 = ("esx01", "esx02", "esx03", "esx04", "pflex01", "prod-c1-h01", "prod-c1-h02")
LAB_80 = ("prod-c2-h01", "prod-c2-h02")


def _texts(reply: object) -> str:
    blocks = getattr(reply, "blocks", ())
    return "\n".join(b.text for b in blocks if isinstance(b, Text))


async def test_vmsa_2025_0004_names_vulnerable_hosts_why_and_the_fixes(make_bot: MakeBot) -> None:
    bot = await make_bot()
    reply = await bot.say("vmsa VMSA-2025-0004", as_user=VIEWER)
    assert reply.ok
    assert reply.summary.startswith("VMSA-2025-0004 (critical): EXPLOITED, 9 hosts vulnerable (esx01, ")
    fixes = next(
        b for b in reply.blocks if isinstance(b, Table) and b.title == "Fixed builds (response matrix)"
    )
    assert [r[:2] for r in fixes.rows] == [
        ("ESXi 8.0", "ESXi 8.0 Update 3d (24585383)"),
        ("ESXi 8.0", "ESXi 8.0 Update 2d (24585300)"),
        ("ESXi 7.0", "ESXi 7.0 Update 3s (24585291)"),
    ]
    hosts = next(b for b in reply.blocks if isinstance(b, Table) and b.title == "Hosts")
    by_host = {r[0]: r for r in hosts.rows}
    assert set(by_host) == {*LAB_70, *LAB_80}
    assert by_host["esx01"][1:4] == ("vulnerable", "all", "ESXi 7.0 Update 3s (24585291)")
    assert by_host["esx01"][4] == (
        "host build 17867351 (ESXi 7.0 Update 2a) predates ESXi 7.0 Update 3s (24585291), "
        "the nearest fix for ESXi 7.0"
    )
    assert by_host["prod-c2-h01"][3] == "ESXi 8.0 Update 2d (24585300)"
    assert (
        "EXPLOITED IN THE WILD: CVE-2025-22224, CVE-2025-22225, CVE-2025-22226 (KEV since 2025-03-04"
        in _texts(reply)
    )
    card = next(b for b in reply.blocks if isinstance(b, Fields))
    assert (
        dict(card.items)["CVEs (CVSSv3)"]
        == "CVE-2025-22224 (9.3); CVE-2025-22225 (8.2); CVE-2025-22226 (7.1)"
    )
    matches = reply.data["matches"]
    assert len(matches) == 27 and all(m["exploited"] for m in matches)


async def test_vmsa_2024_0013_says_no_patch_planned_and_gives_the_workaround(make_bot: MakeBot) -> None:
    bot = await make_bot()
    reply = await bot.say("vmsa 2024-13", as_user=VIEWER)
    hosts = next(b for b in reply.blocks if isinstance(b, Table) and b.title == "Hosts")
    by_host = {r[0]: r for r in hosts.rows}
    assert by_host["pflex01"][3] == "-"
    assert by_host["pflex01"][4].startswith("no patch planned for ESXi 7.0")
    assert by_host["pflex01"][4].endswith("the host is joined to Active Directory: exposed")
    assert by_host["esx01"][4].endswith("not joined to Active Directory: not exposed while it stays so")
    assert by_host["prod-c2-h01"][3] == "ESXi 8.0 Update 3 (24022510)"
    text = _texts(reply)
    assert "No patch planned for ESXi 7.0. Workaround: change the host advanced settings" in text
    assert "KB 369707" in text and "used by ransomware" in text


async def test_advisories_list_cve_and_unknown_ids(make_bot: MakeBot) -> None:
    bot = await make_bot()
    listing = await bot.say("advisories", as_user=VIEWER)
    assert (
        listing.summary
        == "3 advisories leave hosts vulnerable; 2 exploited in the wild with vulnerable hosts"
    )
    (table,) = listing.blocks
    assert isinstance(table, Table)
    assert [r[:5] for r in table.rows] == [
        ("VMSA-2025-0004", "critical", "KEV, due 2025-03-25", "9", "-"),
        ("VMSA-2024-0013", "important", "KEV, due 2024-08-20", "9", "-"),
        ("VMSA-2024-0006", "critical", "", "9", "-"),
    ]
    assert (await bot.say("advisories all", as_user=VIEWER)).ok
    cve = await bot.say("cve CVE-2024-22252", as_user=VIEWER)
    assert cve.summary.startswith("CVE-2024-22252: not in CISA KEV, 9 hosts vulnerable")
    table = next(b for b in cve.blocks if isinstance(b, Table))
    esx01 = next(r for r in table.rows if r[0] == "esx01")
    assert esx01[4].endswith("VMs with a USB controller: win11-desk, plex: exposed")
    missing = await bot.say("vmsa VMSA-2031-0001", as_user=VIEWER)
    assert not missing.ok and "not known" in missing.summary
    bad = await bot.say("vmsa hello", as_user=VIEWER)
    assert not bad.ok and "not an advisory id" in bad.summary
    assert not (await bot.say("cve CVE-2031-9999", as_user=VIEWER)).ok


async def test_check_lists_advisories_and_rooms_subscribe_to_security(make_bot: MakeBot) -> None:
    bot = await make_bot()
    check = await bot.say("check esx01", as_user=VIEWER)
    table = next(
        b for b in check.blocks if isinstance(b, Table) and (b.title or "").startswith("Security advisories")
    )
    assert [r[:2] for r in table.rows] == [
        ("VMSA-2025-0004", "EXPLOITED"),
        ("VMSA-2024-0013", "EXPLOITED"),
        ("VMSA-2024-0006", ""),
    ]
    subscribed = await bot.say("subscribe security", as_user=OPERATOR)
    assert subscribed.ok and "security advisories" in subscribed.summary
    assert (await bot.say("subscriptions", as_user=OPERATOR)).data["topics"] == ["security"]


async def test_patch_preview_lists_the_cves_the_target_closes(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        preview = await bot.say("patch esx-usb-01 to 7.0 U3s --dry-run")
        closing = [n for n in _texts(preview).splitlines() if "closes" in n]
        assert closing, _texts(preview)
        assert "ESXi 7.0 Update 3s closes CVE-2024-22252 (VMSA-2024-0006)" in closing[0]
        assert "CVE-2025-22224 (VMSA-2025-0004)" in closing[0]
        assert "CVE-2024-37085" not in closing[0]  # no patch planned for 7.0: the update does not close it


@pytest.mark.parametrize(("joined", "paged"), [(False, False), (True, True)])
async def test_an_exploited_cve_pages_only_when_a_host_is_within_reach(
    make_bot: MakeBot, tmp_path: Path, joined: bool, paged: bool
) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(
        f"- {{name: esx-a, build: 24585291, ad_joined: {str(joined).lower()}}}\n"
        "- {name: esx-b, build: 24585291, ad_joined: false}\n"
    )
    bot = await make_bot(inventory_file=str(inventory), extra={"oncall": ONCALL})
    service = bot.app.services.advisories
    assert service is not None and service.paging()
    advisory = await service.find("VMSA-2024-0013")
    assert advisory is not None
    await service.announce(advisory, key="test")
    reply = await bot.say("alerts", as_user=VIEWER)
    assert bool(reply.data.get("alerts")) is paged
    if paged:
        (alert,) = reply.data["alerts"]
        assert (await bot.say(f"ack {alert['id']}", as_user=OPERATOR)).ok
        listing = await bot.say("advisories", as_user=VIEWER)
        row = next(
            r for b in listing.blocks if isinstance(b, Table) for r in b.rows if r[0] == "VMSA-2024-0013"
        )
        assert row[4] == f"#{alert['id']} acknowledged by {OPERATOR}"
    vmsa = await bot.say("vmsa VMSA-2024-0013", as_user=VIEWER)
    exposed = (
        "1 exposed by their configuration, 1 not" if joined else "0 exposed by their configuration, 2 not"
    )
    assert vmsa.summary.endswith(exposed)


async def test_an_unreadable_stored_advisory_is_skipped_not_fatal(make_bot: MakeBot) -> None:
    bot = await make_bot()
    db = bot.app.services.store.db
    for advisory_id, doc in (("VMSA-2031-0001", "{not json"), ("VMSA-2031-0002", '{"title": "no id"}')):
        await db.execute(
            "INSERT INTO advisories (id, doc, digest, source, first_seen, changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (advisory_id, doc, "x", "test", 0.0, 0.0),
        )
    await db.execute(
        "INSERT INTO kev_entries (cve, doc, first_seen) VALUES (?, ?, ?)", ("CVE-2031-1", "[]", 0.0)
    )
    listing = await bot.say("advisories all", as_user=VIEWER)
    assert listing.ok and [a["id"] for a in listing.data["advisories"]][:1] == ["VMSA-2025-0004"]
    assert (await bot.say("cve CVE-2025-22224", as_user=VIEWER)).ok
