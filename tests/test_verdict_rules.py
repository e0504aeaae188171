"""The verdict rules of issue 14: product lines, named releases as conditions, feature facts, and how
``check``/``pr``/``affected`` and the release announcement show what stays undecided."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.inventory.static_file import InventoryError, build_lookup, parse_inventory
from bot.messages import Table, Text
from bot.model import BootDevice, BootKind, Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleError, MatchRuleSet, parse_rules
from bot.releases.matching import match
from bot.releases.release_conditions import NamedReleases, named_releases
from handlers import ALL
from tests.fixtures.bot import MakeBot
from tests.shared_data import shared_file

CATALOG = BuildCatalog.bundled()
RULES = MatchRuleSet.bundled()
U3C = Release("7.0", "ESXi 7.0 Update 3c", 19193900, date(2022, 1, 27), version="7.0.3")
R80U2 = Release("8.0", "ESXi 8.0 Update 2", 22380479, date(2023, 9, 21), version="8.0.2")


def _host(build: int | None = None, **fields: object) -> Host:
    return Host("h1", build=build, **fields)  # type: ignore[arg-type]


def _one(
    text: str, host: Host, release: Release = U3C, others: tuple[Release, ...] = ()
) -> tuple[Verdict, tuple[str, ...]]:
    result = match(Fix("1234567", text), host, release, RULES, CATALOG, others=others)
    return result.verdict, result.reasons


def test_an_older_line_is_not_affected_and_the_own_line_release_is_named() -> None:
    sd = BootDevice(BootKind.SD, driver="vmkusb")
    seventy = _host(18426014, boot_device=sd)
    text = "Hosts that boot from SD cards report the boot device as degraded"
    own = Release("7.0", "ESXi 7.0 Update 3c", 19193900, version="7.0.3", fixes=(Fix("1234567", text),))
    assert _one(text, seventy, R80U2) == (
        Verdict.NOT_AFFECTED,
        ("fix is in the 8.0 line; host runs 7.0 — a 7.0 release carries its own fixes",),
    )
    reasons = _one(text, seventy, R80U2, (own,))[1]
    assert reasons[0].endswith("PR 1234567 is also in ESXi 7.0 Update 3c, of the host's line")
    assert _one(text, _host(14320388, boot_device=sd), U3C)[0] is Verdict.NOT_AFFECTED  # 6.7 host
    assert _one(text, _host(21495797, boot_device=sd), R80U2)[0] is Verdict.AFFECTED  # same line
    # a newer line keeps the "released after" rule; nine needs nothing special
    assert _one(text, _host(21495797, boot_device=sd), U3C)[0] is Verdict.FIXED
    nine = Release("9.0", "ESX 9.0", 24755225, version="9.0.0")
    assert _one(text, _host(24022510, boot_device=sd), nine)[1][0].startswith(
        "fix is in the 9.0 line; host runs 8.0"
    )


def test_named_release_or_later() -> None:
    text = "After upgrading to ESXi 7.0 Update 2, hosts might log warnings"
    assert named_releases(text) == NamedReleases(("ESXi 7.0 Update 2",))
    older = _one(text, _host(17551050))  # 7.0 U1d
    assert older == (
        Verdict.NOT_AFFECTED,
        (
            "fix concerns hosts on ESXi 7.0 Update 2 or later; "
            "host runs ESXi 7.0 Update 1d (build 17551050), an older release",
        ),
    )
    assert _one(text, _host(17867351))[0] is Verdict.AFFECTED  # 7.0 U2a, lacks U3c
    assert _one(text, _host(version="7.0.3"))[0] is Verdict.POSSIBLY_AFFECTED  # newer, but no build


def test_named_release_set() -> None:
    text = (
        "Affected ESXi versions are 7.0 Update 3a, 7.0 Update 3, 7.0 Update 2d, and 7.0 Update 2c. "
        "Later than ESXi 7.0 Update 2a."
    )
    found = named_releases(text)
    assert found == NamedReleases(
        ("ESXi 7.0 Update 2c", "ESXi 7.0 Update 2d", "ESXi 7.0 Update 3", "ESXi 7.0 Update 3a"), exact=True
    )
    assert _one(text, _host(18538813))[0] is Verdict.AFFECTED  # U2d
    verdict, reasons = _one(text, _host(19290878))  # U2e: later than U2a but not listed
    assert verdict is Verdict.NOT_AFFECTED and reasons[0].endswith("not one of them")
    assert _one(text, _host(version="7.0.3"))[0] is Verdict.POSSIBLY_AFFECTED
    assert _one(text, _host(version="7.0.1"))[0] is Verdict.NOT_AFFECTED


def test_the_real_i40en_statement_names_a_set() -> None:
    """The sentence shape of VMware's i40en/i40enu note (../shared/data/notes), read, not copied."""
    fragments = shared_file("notes/release-note-fragments.txt").read_text(encoding="utf-8")
    statement = next(line for line in fragments.splitlines() if "Affected ESXi versions are" in line)
    found = named_releases(statement.replace("**", ""))
    assert found == NamedReleases(
        ("ESXi 7.0 Update 2c", "ESXi 7.0 Update 2d", "ESXi 7.0 Update 3", "ESXi 7.0 Update 3a"), exact=True
    )
    i40en = {"drivers": {"i40en": "1.10"}}
    assert _one(statement, _host(18538813, **i40en))[0] is Verdict.AFFECTED  # 7.0 U2d
    assert _one(statement, _host(19290878, **i40en))[0] is Verdict.NOT_AFFECTED  # 7.0 U2e, later than U2a


def test_features_decide_rules_and_nvme_over_fabrics_is_not_any_nvme() -> None:
    hosts = parse_inventory(
        [
            {"name": "vsan", "build": 18426014, "features": ["vsan", "HA"]},
            {"name": "none", "build": 18426014, "features": []},
            {"name": "unknown", "build": 18426014},
            {"name": "local-nvme", "build": 18426014, "drivers": ["nvme_pcie"]},
            {"name": "nvme-tcp", "build": 18426014, "drivers": ["nvme_pcie", "nvmetcp"]},
        ],
        "inline",
        build_lookup(CATALOG),
    )
    by = {h.name: h for h in hosts}
    assert by["vsan"].features["vsan"].present and not by["vsan"].features["drs"].present
    assert by["unknown"].features == {}
    vsan = "vSAN objects report stale capacity"
    assert _one(vsan, by["vsan"]) == (
        Verdict.AFFECTED,
        (
            "fix concerns vSAN; host uses it (the inventory file's features list)",
            "host runs 7.0.2 (build 18426014), an older update line than 7.0.3",
        ),
    )
    assert _one(vsan, by["none"])[0] is Verdict.NOT_AFFECTED
    assert _one(vsan, by["unknown"])[0] is Verdict.POSSIBLY_AFFECTED
    nvmeof = "Hosts that use NVMe over Fabrics lose paths"
    assert _one(nvmeof, by["local-nvme"])[0] is Verdict.NOT_AFFECTED
    assert _one(nvmeof, by["nvme-tcp"])[0] is Verdict.AFFECTED
    assert _one("NVMe devices become inaccessible", by["local-nvme"])[0] is Verdict.AFFECTED


@pytest.mark.parametrize(
    ("features", "error"),
    [("vsan", "expected a list of features"), (["vsan", "gpu"], "unknown feature 'gpu'")],
)
def test_bad_features_are_named(features: object, error: str) -> None:
    with pytest.raises(InventoryError, match=error) as caught:
        parse_inventory([{"name": "a", "build": 1, "features": features}], "inv.yaml")
    assert "inv.yaml: hosts[0] (a).features" in str(caught.value)


def test_rule_feature_must_be_known() -> None:
    with pytest.raises(MatchRuleError, match="feature must be one of"):
        parse_rules("rules:\n  - {id: x, feature: gpu, patterns: ['x']}\n", "user.yaml")


async def test_check_pr_and_affected_say_what_is_undecided(make_bot: MakeBot, tmp_path: Path) -> None:
    bot = await make_bot(specs=ALL)
    reply = await bot.say("check esx01")
    texts = [b.text for b in reply.blocks if isinstance(b, Text)]
    table = next(b for b in reply.blocks if isinstance(b, Table) and b.title and "Fixes" in b.title)
    assert {row[1] for row in table.rows} == {"affected"}
    more = next(t for t in texts if "might matter" in t)
    assert "no condition esxbot recognises (11)" in more and "`check esx01 --all`" in more
    full = await bot.say("check esx01 --all")
    table = next(b for b in full.blocks if isinstance(b, Table) and b.title and "Fixes" in b.title)
    assert {row[1] for row in table.rows} == {"affected", "possibly-affected"}
    assert not any("might matter" in b.text for b in full.blocks if isinstance(b, Text))

    vsan_pr = await bot.say("pr 2771730")  # the demo inventory lists features: esx01 has no vSAN
    rows = {row[0]: row for b in vsan_pr.blocks if isinstance(b, Table) for row in b.rows}
    assert rows["esx01"][1:4] == (
        "not-affected",
        "-",
        "fix concerns vSAN; host does not use it (the inventory file's features list)",
    )
    generic = await bot.say("pr 2680197")
    rows = {row[0]: row for b in generic.blocks if isinstance(b, Table) for row in b.rows}
    assert rows["esx01"][1:3] == ("possibly-affected", "no condition esxbot recognises")
    affected = await bot.say("affected 7.0 U2c")
    assert "boot device kind (sd) unknown" in affected.data["undecided"]["esx01.lab.local"]
