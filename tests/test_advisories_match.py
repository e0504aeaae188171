"""Verdicts per (advisory CVE, host), and the ``advisories match|parse`` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.advisories.matching import match_all
from bot.advisories.model import Advisory, KevEntry, Verdict
from bot.advisories.page import parse_page
from bot.advisories.records import parse_kev
from bot.builds import BuildCatalog
from bot.model import Host
from bot.runtime.cli import main

DATA = Path(__file__).parent / "data" / "advisories"
PAGES = Path(__file__).parents[1] / "bot" / "data" / "advisories"
CATALOG = BuildCatalog.bundled()
KEV = {e.cve: e for e in parse_kev((PAGES / "kev.json").read_bytes()).entries}


def _page(path: Path) -> Advisory:
    advisory = parse_page(path.read_bytes(), url="x", catalog=CATALOG).advisory
    assert advisory is not None
    return advisory


def _host(name: str, build: int, **facts: object) -> Host:
    known = CATALOG.lookup(build)
    assert known is not None
    return Host(name=name, build=build, version=known.version, **facts)  # type: ignore[arg-type]


def _verdicts(
    advisory: Advisory, hosts: list[Host], kev: dict[str, KevEntry] | None = None
) -> dict[str, tuple[Verdict, str | None, tuple[str, ...]]]:
    (result,) = match_all([advisory], hosts, CATALOG, KEV if kev is None else kev)
    first = result.cves[0].cve
    return {m.host: (m.verdict, m.fixed_by, m.reasons) for m in result.matches() if m.cve == first}


def test_vmsa_2025_0004_build_against_the_fixed_build_of_each_line() -> None:
    advisory = _page(PAGES / "VMSA-2025-0004.html")
    hosts = [
        _host("u3c", 24280767),  # 8.0 U3b: older than U3d
        _host("u3d", 24585383),  # the fix itself
        _host("u3e", 24674464),  # newer in the same update line
        _host("u2b", 23305546),  # 8.0 U2b: older than U2d
        _host("u1d", 23299997),  # 8.0 U1: no fix for its update line; nearest newer
        _host("70u3q", 23794027),  # 7.0 U3q < U3s
        _host("70u3s", 24585291),
        _host("67", 17700523),  # 6.7: not listed
        Host(name="nobuild", version="7.0.3"),
    ]
    got = _verdicts(advisory, hosts)
    assert {h: v[0] for h, v in got.items()} == {
        "u3c": Verdict.VULNERABLE,
        "u3d": Verdict.FIXED,
        "u3e": Verdict.FIXED,
        "u2b": Verdict.VULNERABLE,
        "u1d": Verdict.VULNERABLE,
        "70u3q": Verdict.VULNERABLE,
        "70u3s": Verdict.FIXED,
        "67": Verdict.NOT_APPLICABLE,
        "nobuild": Verdict.UNKNOWN,
    }
    assert got["u3c"][1] == "ESXi 8.0 Update 3d (24585383)"
    assert got["u3c"][2] == (
        "host build 24280767 (ESXi 8.0 Update 3b) is older than ESXi 8.0 Update 3d (24585383), "
        "the fix for its update line",
    )
    assert got["u2b"][1] == "ESXi 8.0 Update 2d (24585300)"
    assert got["u1d"][1] == "ESXi 8.0 Update 2d (24585300)"
    assert got["70u3q"][1] == "ESXi 7.0 Update 3s (24585291)"
    assert got["67"][2] == ("the advisory's fixes cover ESXi 8.0, 7.0; the host runs 6.7",)
    assert got["nobuild"][2] == ("the host's build is unknown",)
    (result,) = match_all([advisory], hosts, CATALOG, KEV)
    assert result.exploited and all(c.exploited for c in result.cves)


def test_a_newer_update_line_contains_an_older_lines_fix_only_when_the_catalog_says_so() -> None:
    advisory = _page(PAGES / "VMSA-2024-0006.html")
    hosts = [_host("80u3", 24022510), _host("80u2", 22380479), _host("67", 17700523)]
    got = _verdicts(advisory, hosts)
    assert got["80u3"][0] is Verdict.FIXED  # 8.0 U3 (2024-06-25) came after 8.0 U2b (2024-02-29)
    assert got["80u2"][0] is Verdict.VULNERABLE  # 8.0 U2 GA predates the U2b security build
    assert got["67"][0] is Verdict.UNKNOWN
    assert got["67"][2][0] == "ESXi 6.7 Update 3u is not in the build catalog"


def test_no_patch_planned_and_the_active_directory_exposure() -> None:
    advisory = _page(PAGES / "VMSA-2024-0013.html")
    hosts = [
        _host("joined", 24585291, ad_joined=True),
        _host("alone", 24585291, ad_joined=False),
        _host("unsure", 24585291),
        _host("80u3", 24022510, ad_joined=True),
    ]
    (result,) = match_all([advisory], hosts, CATALOG, KEV)
    by_host = {m.host: m for m in result.matches()}
    assert by_host["joined"].verdict is Verdict.VULNERABLE and by_host["joined"].fixed_by is None
    assert by_host["joined"].reasons[0] == "no patch planned for ESXi 7.0"
    assert by_host["joined"].exposed is True
    assert by_host["alone"].exposed is False and "not joined" in by_host["alone"].reasons[-1]
    assert by_host["unsure"].exposed is None and "unknown" in by_host["unsure"].reasons[-1]
    assert by_host["80u3"].verdict is Verdict.FIXED and by_host["80u3"].exposed is None
    assert by_host["joined"].exploited is True


def test_usb_controller_exposure_and_unplaceable_fixed_versions() -> None:
    advisory = _page(PAGES / "VMSA-2024-0006.html")
    hosts = [
        _host("usb", 22348816, usb_controller_vms=("vm1",)),
        _host("nousb", 22348816, usb_controller_vms=()),
    ]
    got = _verdicts(advisory, hosts)
    assert "VMs with a USB controller: vm1: exposed" in got["usb"][2]
    assert "no VM on the host has a USB controller" in got["nousb"][2][-1]
    odd = _page(DATA / "VMSA-2099-0002.odd-versions.html")
    got = _verdicts(odd, [_host("80", 24585383), _host("70", 24585291)])
    assert got["80"][0] is Verdict.UNKNOWN and "cannot read a fixed version" in got["80"][2][0]
    assert got["70"][0] is Verdict.VULNERABLE and got["70"][2][0] == "the patch for ESXi 7.0 is pending"
    no_matrix = _page(DATA / "VMSA-2099-0001.no-matrix.html")
    assert _verdicts(no_matrix, [_host("70", 24585291)])["70"] == (
        Verdict.UNKNOWN,
        None,
        ("the advisory's fixed versions are not known yet",),
    )


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "hosts:\n"
        "  - {name: esx-a, build: 24280767, ad_joined: true}\n"
        "  - {name: esx-b, build: 24585291}\n"
        "  - {name: esx-c, version: 6.7.0, build: 17700523, usb_controller_vms: [winxp]}\n"
    )
    return path


def test_cli_match_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "advisories",
            "match",
            "--advisory",
            str(PAGES / "VMSA-2025-0004.html"),
            "--advisory",
            str(PAGES / "VMSA-2024-0013.html"),
            "--advisory",
            str(DATA / "CVE-2024-22252.json"),
            "--kev",
            str(PAGES / "kev.json"),
            "--inventory",
            str(_inventory(tmp_path)),
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert code == 0
    rows = json.loads(out.out)
    assert {tuple(sorted(r)) for r in rows} == {
        ("advisory", "cve", "exploited", "exposed", "fixed_by", "host", "reasons", "verdict")
    }
    pick = {(r["advisory"], r["cve"], r["host"]): r for r in rows}
    a = pick[("VMSA-2025-0004", "CVE-2025-22224", "esx-a")]
    assert (a["verdict"], a["fixed_by"], a["exploited"]) == (
        "vulnerable",
        "ESXi 8.0 Update 3d (24585383)",
        True,
    )
    assert pick[("VMSA-2025-0004", "CVE-2025-22224", "esx-b")]["verdict"] == "fixed"
    assert pick[("VMSA-2025-0004", "CVE-2025-22224", "esx-c")]["verdict"] == "not-applicable"
    b = pick[("VMSA-2024-0013", "CVE-2024-37085", "esx-b")]
    assert (b["verdict"], b["fixed_by"], b["exposed"]) == ("vulnerable", None, None)
    c = pick[("VMSA-2024-0006", "CVE-2024-22252", "esx-c")]
    assert c["verdict"] == "unknown" and c["exposed"] is True
    assert "warning:" in out.err and "'8.0 ' trimmed" in out.err


def test_cli_parse_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advisories", "parse", str(PAGES / "VMSA-2024-0013.html"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (advisory,) = doc["advisories"]
    assert (
        advisory["id"] == "VMSA-2024-0013" and advisory["lines"][1]["fixes"][0]["state"] == "no patch planned"
    )
    assert main(["advisories", "parse", str(DATA / "list-truncated.json")]) == 1
    assert "warning: not JSON" in capsys.readouterr().out
    assert main(["advisories", "parse", str(tmp_path / "missing.html")]) == 2
    assert "cannot read" in capsys.readouterr().out
    inventory = _inventory(tmp_path)
    assert (
        main(
            ["advisories", "match", "--advisory", str(DATA / "kev-dirty.json"), "--inventory", str(inventory)]
        )
        == 1
    )


def test_a_list_row_and_a_cve_record_without_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The list row knows the CVEs, the record one CVE's fixed versions: the others stay unknown."""
    args = [
        "advisories",
        "match",
        "--advisory",
        str(DATA / "list.json"),
        "--advisory",
        str(DATA / "CVE-2025-22224.json"),
    ]
    assert main([*args, "--inventory", str(_inventory(tmp_path)), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    pick = {(r["cve"], r["host"]): r for r in rows if r["advisory"] == "VMSA-2025-0004"}
    assert (pick[("CVE-2025-22224", "esx-a")]["verdict"], pick[("CVE-2025-22224", "esx-a")]["fixed_by"]) == (
        "vulnerable",
        "ESXi 8.0 Update 3d (24585383)",
    )
    assert pick[("CVE-2025-22224", "esx-b")]["verdict"] == "fixed"
    assert pick[("CVE-2025-22225", "esx-a")]["reasons"] == ["no ESXi fixed version is known for this CVE yet"]
    assert pick[("CVE-2025-22225", "esx-a")]["verdict"] == "unknown"
    row_0013 = next(r for r in rows if r["advisory"] == "VMSA-2024-0013")
    assert row_0013["reasons"] == ["the advisory's fixed versions are not known yet"]
