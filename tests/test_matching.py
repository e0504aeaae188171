"""Matching verdicts on the demo inventory and the demo release notes (the issue's "Done when")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.inventory.static_file import load_inventory
from bot.model import BootDevice, BootKind, Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleError, MatchRuleSet
from bot.releases.matching import conditions, match, match_release
from bot.releases.sources.release_notes import parse_notes

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "bot" / "data" / "demo"


@pytest.fixture(scope="module")
def catalog() -> BuildCatalog:
    return BuildCatalog.bundled()


@pytest.fixture(scope="module")
def hosts(catalog: BuildCatalog) -> list[Host]:
    def lookup(build: int) -> tuple[str | None, str | None] | None:
        known = catalog.lookup(build)
        return (known.version, known.name) if known else None

    return load_inventory(DEMO / "inventory.yaml", lookup)


def _release(name: str) -> Release:
    release = parse_notes((DEMO / "notes" / name).read_bytes()).release
    assert release is not None
    return release


def _verdicts(release: Release, pr: str, hosts: list[Host], catalog: BuildCatalog) -> dict[str, Verdict]:
    result = match_release(release, hosts, MatchRuleSet.bundled(), catalog)
    return {m.host.split(".")[0]: m.verdict for m in result.matches() if m.pr == pr}


def test_usb_fix_on_demo_fleet(hosts: list[Host], catalog: BuildCatalog) -> None:
    verdicts = _verdicts(_release("esxi-70u2c.html"), "2777003", hosts, catalog)
    assert verdicts["esx01"] is Verdict.AFFECTED
    assert verdicts["esx02"] is Verdict.AFFECTED
    assert verdicts["esx03"] is Verdict.NOT_AFFECTED  # same build, boots from SSD
    assert verdicts["esx04"] is Verdict.FIXED  # runs 7.0 U2c
    assert verdicts["prod-c2-h01"] is Verdict.FIXED  # 8.0 came later


def test_usb_fix_reasons_are_checkable(hosts: list[Host], catalog: BuildCatalog) -> None:
    release = _release("esxi-70u2c.html")
    fix = next(f for f in release.fixes if f.pr == "2777003")
    esx01 = next(h for h in hosts if h.name.startswith("esx01"))
    result = match(fix, esx01, release, MatchRuleSet.bundled(), catalog)
    assert result.verdict is Verdict.AFFECTED
    assert "host boots from usb (mpx.vmhba32:C0:T0:L0, vmhba32, vmkusb)" in result.reasons
    assert "host build 17867351 is older than 18426014" in result.reasons


def test_powerflex_fix_only_on_powerflex_host(hosts: list[Host], catalog: BuildCatalog) -> None:
    verdicts = _verdicts(_release("esxi-70u2d.html"), "2824750", hosts, catalog)
    hit = {h for h, v in verdicts.items() if v in (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED)}
    assert hit == {"pflex01"}
    assert set(verdicts) == {h.name.split(".")[0] for h in hosts}


def test_dell_without_powerflex_tag_is_not_affected(catalog: BuildCatalog) -> None:
    release = _release("esxi-70u2d.html")
    dell = Host("r640", build=17867351, vendor="Dell Inc.", model="PowerEdge R640", tags=frozenset({"prod"}))
    result = match(release.fixes[0], dell, release, MatchRuleSet.bundled(), catalog)
    assert result.verdict is Verdict.NOT_AFFECTED
    assert result.reasons[0] == (
        "fix concerns Dell EMC PowerFlex; host is a Dell Inc. PowerEdge R640 with no powerflex tag"
    )
    found = conditions(release.fixes[0], MatchRuleSet.bundled())
    assert "vendor-dell" not in {r.id for r in found.rules}


def test_unknown_facts_give_possibly(catalog: BuildCatalog) -> None:
    release = _release("esxi-70u2c.html")
    fix = next(f for f in release.fixes if f.pr == "2777003")
    bare = Host("bare", build=17867351)
    assert match(fix, bare, release, MatchRuleSet.bundled(), catalog).verdict is Verdict.POSSIBLY_AFFECTED
    nobuild = Host("nobuild", boot_device=BootDevice(BootKind.USB))
    result = match(fix, nobuild, release, MatchRuleSet.bundled(), catalog)
    assert result.verdict is Verdict.POSSIBLY_AFFECTED and "host build is unknown" in result.reasons
    plain = Fix("1234567", "The hostd service leaks memory", "It leaks.")
    assert match(plain, bare, release, MatchRuleSet.bundled(), catalog).verdict is Verdict.POSSIBLY_AFFECTED


def test_user_rules_extend_and_replace(tmp_path: Path, catalog: BuildCatalog) -> None:
    extra = tmp_path / "rules.yaml"
    extra.write_text(
        "rules:\n  - {id: feature-gpu, kind: feature, label: NVIDIA vGPU, tags: [vgpu], absent: 'false',"
        " patterns: ['\\bvGPU\\b']}\n",
        encoding="utf-8",
    )
    rules = MatchRuleSet.load([extra])
    fix = Fix("7654321", "VMs with vGPU profiles fail to power on")
    release = Release("7.0", "ESXi 7.0 Update 2c", 18426014, version="7.0.2")
    gpu = Host("gpu", build=17867351, tags=frozenset({"vgpu"}))
    other = Host("other", build=17867351)
    assert match(fix, gpu, release, rules, catalog).verdict is Verdict.AFFECTED
    assert match(fix, other, release, rules, catalog).verdict is Verdict.NOT_AFFECTED
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: x, patterns: ['(']}\n", encoding="utf-8")
    with pytest.raises(MatchRuleError, match="bad pattern"):
        MatchRuleSet.load([bad])
