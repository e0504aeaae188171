"""Advisory parsers on fixtures in the published structures, and on bad input: warnings, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.advisories.list_api import parse_list
from bot.advisories.model import (
    Advisory,
    Exposure,
    FixState,
    advisory_from_dict,
    advisory_to_dict,
    changes,
    merge,
)
from bot.advisories.page import MAX_BYTES, parse_page
from bot.advisories.records import parse_cve, parse_kev
from bot.advisories.versions import line_of, resolve
from bot.builds import BuildCatalog
from tests.shared_data import shared_file

DATA = Path(__file__).parent / "data" / "advisories"
PAGES = Path(__file__).parents[1] / "bot" / "data" / "advisories"
CATALOG = BuildCatalog.bundled()


def _page(name: str, folder: Path = PAGES) -> Advisory:
    result = parse_page((folder / name).read_bytes(), url=f"https://example.test/{name}", catalog=CATALOG)
    assert result.advisory is not None, result.warnings
    return result.advisory


@pytest.mark.parametrize(
    ("text", "state", "build", "version", "name"),
    [
        ("ESXi80U3d-24585383", FixState.FIXED, 24585383, "8.0.3", "ESXi 8.0 Update 3d"),
        ("ESXi80U2sb-23305545", FixState.FIXED, 23305545, "8.0.2", "ESXi 8.0 Update 2b (Security Only)"),
        ("ESXi70U3s-24585291", FixState.FIXED, 24585291, "7.0.3", "ESXi 7.0 Update 3s"),
        ("ESXi 7.0 U3e", FixState.FIXED, 19898904, "7.0.3", "ESXi 7.0 Update 3e"),
        ("ESXi 8.0 Update 3", FixState.FIXED, 24022510, "8.0.3", "ESXi 8.0 Update 3"),
        ("24585291", FixState.FIXED, 24585291, "7.0.3", "ESXi 7.0 Update 3s"),
        ("6.7U3u", FixState.UNKNOWN, None, "6.7.3", "ESXi 6.7 Update 3u"),
        ("No patch planned", FixState.NO_PATCH, None, None, None),
        ("Patch pending", FixState.PENDING, None, None, None),
        ("9.0.1.0101.24878356", FixState.FIXED, 24878356, "9.0.1", "ESX 9.0.1.0101.24878356"),
        ("the next rollup", FixState.UNKNOWN, None, None, None),
    ],
)
def test_fixed_version_strings_are_placed_on_the_catalog(
    text: str, state: FixState, build: int | None, version: str | None, name: str | None
) -> None:
    (found,) = resolve(text, CATALOG)
    assert (found.state, found.build, found.version, found.name) == (state, build, version, name)
    assert (found.reason is not None) is (state is FixState.UNKNOWN)


def test_a_build_that_contradicts_its_name_is_unknown() -> None:
    (found,) = resolve("ESXi80U3d-24585291", CATALOG)  # 24585291 is 7.0 U3s
    assert found.state is FixState.UNKNOWN and "ESXi 7.0 Update 3s" in (found.reason or "")


def test_one_cell_may_name_several_builds_and_lines_read_loosely() -> None:
    found = resolve("ESXi80U3d-24585383\nESXi80U2d-24585300", CATALOG)
    assert [f.build for f in found] == [24585383, 24585300]
    assert [line_of(v) for v in ("8.0", "8.0 [1]", "7.x", "ESXi 7.0 U3", "Any")] == [
        "8.0",
        "8.0",
        "7.0",
        "7.0",
        None,
    ]


def test_vmsa_2025_0004_page() -> None:
    advisory = _page("VMSA-2025-0004.html")
    assert advisory.id == "VMSA-2025-0004" and advisory.severity == "critical"
    assert str(advisory.published) == "2025-03-04" and advisory.revision == "1.0"
    assert [(c.id, c.cvss) for c in advisory.cves] == [
        ("CVE-2025-22224", 9.3),
        ("CVE-2025-22225", 8.2),
        ("CVE-2025-22226", 7.1),
    ]
    assert advisory.cves[0].vector == "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H"
    assert [(lf.line, [f.build for f in lf.fixes]) for lf in advisory.lines] == [
        ("8.0", [24585383]),
        ("8.0", [24585300]),
        ("7.0", [24585291]),
    ]
    assert advisory.workaround is None and advisory.exposures == ()
    assert "VMware Cloud Foundation" in advisory.products  # the deploying-suites table is read, not matched


def test_vmsa_2024_0006_page_has_eol_lines_it_cannot_place_and_the_usb_exposure() -> None:
    result = parse_page((PAGES / "VMSA-2024-0006.html").read_bytes(), url="x", catalog=CATALOG)
    advisory = result.advisory
    assert advisory is not None
    assert [(lf.line, [f.label() for f in lf.fixes]) for lf in advisory.lines] == [
        ("8.0", ["ESXi 8.0 Update 2b (Security Only) (23305545)"]),
        ("8.0", ["ESXi 8.0 Update 1d (23299997)"]),
        ("7.0", ["ESXi 7.0 Update 3p (23307199)"]),
        ("6.7", ["6.7U3u"]),
        ("6.5", ["6.5U3v"]),
    ]
    assert advisory.exposures == (Exposure.USB_CONTROLLER,)
    assert advisory.workaround is not None and "USB controllers" in advisory.workaround
    assert advisory.workaround_kb is not None and "96682" in advisory.workaround_kb
    assert result.warnings == (
        "ESXi 6.7: ESXi 6.7 Update 3u is not in the build catalog",
        "ESXi 6.5: ESXi 6.5 Update 3v is not in the build catalog",
    )


def test_vmsa_2024_0013_page_says_no_patch_planned_for_7_0() -> None:
    advisory = _page("VMSA-2024-0013.html")
    rows = {lf.line: lf.fixes[0] for lf in advisory.lines}
    assert rows["8.0"].build == 24022510 and rows["7.0"].state is FixState.NO_PATCH
    assert advisory.exposures == (Exposure.ACTIVE_DIRECTORY,)
    assert advisory.workaround is not None and "esxAdminsGroup" in advisory.workaround


def test_documents_round_trip_through_the_stored_shape() -> None:
    for name in ("VMSA-2025-0004.html", "VMSA-2024-0006.html", "VMSA-2024-0013.html"):
        advisory = _page(name)
        assert advisory_from_dict(json.loads(json.dumps(advisory_to_dict(advisory)))) == advisory


def test_bad_pages_give_warnings_and_what_could_be_read() -> None:
    no_matrix = parse_page((DATA / "VMSA-2099-0001.no-matrix.html").read_bytes(), url="x", catalog=CATALOG)
    assert no_matrix.advisory is not None and no_matrix.advisory.lines == ()
    assert no_matrix.advisory.cves[0].cvss == 5.3
    assert any("no response matrix" in w for w in no_matrix.warnings)

    odd = parse_page((DATA / "VMSA-2099-0002.odd-versions.html").read_bytes(), url="x", catalog=CATALOG)
    assert odd.advisory is not None
    assert [(lf.line, lf.fixes[0].state) for lf in odd.advisory.lines] == [
        ("8.0", FixState.UNKNOWN),
        ("7.0", FixState.PENDING),
        ("6.7", FixState.UNKNOWN),
    ]
    assert len(odd.warnings) == 3

    cut = parse_page((DATA / "VMSA-2025-0004.truncated.html").read_bytes(), url="x", catalog=CATALOG)
    assert cut.advisory is not None and [lf.line for lf in cut.advisory.lines] == ["8.0", "8.0"]

    assert parse_page(b"<html><p>nothing here</p>", url="x", catalog=CATALOG).advisory is None
    head = (PAGES / "VMSA-2025-0004.html").read_bytes().split(b"<h3>Response Matrix")[0]
    broken = parse_page(head + b"<![foo bar]> <table>", url="x", catalog=CATALOG)  # html.parser asserts here
    assert broken.advisory is not None and broken.advisory.cves[0].cvss == 9.3
    assert any(w.startswith("markup unreadable after") for w in broken.warnings)
    assert parse_page(b"\xff\xfe\x00garbage<<<table<tr><td", url="x", catalog=CATALOG).advisory is None


def test_a_50_mb_page_is_read_up_to_the_cap() -> None:
    body = (PAGES / "VMSA-2025-0004.html").read_bytes() + b"<p>" + b"x" * (50 * 1024 * 1024) + b"</p>"
    result = parse_page(body, url="x", catalog=CATALOG)
    assert result.advisory is not None and len(result.advisory.lines) == 3
    assert result.warnings == (f"page of {len(body)} bytes: read the first {MAX_BYTES} only",)


def test_advisory_list_rows() -> None:
    page = parse_list((DATA / "list.json").read_bytes())
    assert [(r.advisory.id, r.advisory.severity, r.concerns_esxi) for r in page.rows] == [
        ("VMSA-2025-0004", "critical", True),
        ("VMSA-2024-0013", "important", True),
        ("VMSA-2024-0006", "critical", True),
        ("VMSA-2026-0007", "critical", False),
    ]
    first = page.rows[0].advisory
    assert first.cve_ids == ("CVE-2025-22224", "CVE-2025-22225", "CVE-2025-22226")
    assert str(first.published) == "2025-03-04" and first.updated == "2025-03-04T10:02:11.120000"
    assert first.title.startswith("VMware ESXi, Workstation")
    assert page.last_page == 0 and page.warnings == ()


def test_the_real_captured_list_response() -> None:
    body = shared_file("feeds/broadcom-vmsa-getSecurityAdvisoryList.response.json").read_bytes()
    page = parse_list(body)
    (row,) = page.rows
    assert row.advisory.id == "VMSA-2026-0007" and row.advisory.cve_ids == (
        "CVE-2026-59346",
        "CVE-2026-59347",
    )
    assert (
        row.concerns_esxi is False and page.last_page == 170 and str(row.advisory.published) == "2026-09-03"
    )


def test_bad_list_responses() -> None:
    bad = parse_list((DATA / "list-bad-rows.json").read_bytes())
    assert [r.advisory.id for r in bad.rows] == ["VMSA-2025-0004"]
    assert bad.rows[0].advisory.url is None and bad.rows[0].advisory.severity is None
    assert len(bad.warnings) == 3 and bad.last_page is None
    cut = parse_list((DATA / "list-truncated.json").read_bytes())
    assert cut.usable is False and cut.warnings[0].startswith("not JSON")
    assert parse_list(b'{"data": {"items": []}}').usable is False
    assert parse_list(b"[" * 100_000).usable is False


def test_cve_records_give_fixed_versions_per_line() -> None:
    record = parse_cve((DATA / "CVE-2024-22252.json").read_bytes(), catalog=CATALOG)
    advisory = record.advisory
    assert advisory is not None and advisory.id == "VMSA-2024-0006"
    assert [(lf.line, lf.cves, lf.fixes[0].build) for lf in advisory.lines] == [
        ("8.0", ("CVE-2024-22252",), 23305545),
        ("7.0", ("CVE-2024-22252",), 23307199),
        ("6.7", ("CVE-2024-22252",), None),
    ]
    assert advisory.cves[0].cvss == 9.3
    assert record.warnings == (
        "affected[0].versions[0]: version '8.0 ' trimmed",
        "affected[0].versions[3]: ESXi 6.5 affected with no fixed version (lessThan)",
    )
    assert parse_cve(b'{"cveMetadata": {}}', catalog=CATALOG).advisory is None
    assert parse_cve(b"not json", catalog=CATALOG).warnings[0].startswith("not JSON")


def test_a_cve_record_fills_in_beside_the_page_and_the_page_wins_its_rows() -> None:
    page = _page("VMSA-2024-0006.html")
    record = parse_cve((DATA / "CVE-2024-22252.json").read_bytes(), catalog=CATALOG).advisory
    assert record is not None
    merged = merge(page, record)
    assert len(merged.lines) == len(page.lines) + 3  # the record's rows cover one CVE only: kept beside
    assert merge(record, page).lines == page.lines  # the page's rows cover the record's


def test_a_revision_says_what_changed() -> None:
    before = _page("VMSA-2025-0004.html")
    text = (PAGES / "VMSA-2025-0004.html").read_bytes().replace(b"ESXi70U3s-24585291", b"ESXi70U3t-99999999")
    text = text.replace(b"<p>1.0 2025", b"<p>1.1 2025-03-10 new build</p><p>1.0 2025")
    after = parse_page(text, url="x", catalog=CATALOG).advisory
    assert after is not None
    assert changes(before, merge(before, after)) == [
        "revision 1.0 → 1.1",
        "ESXi 7.0: fixed by ESXi 7.0 Update 3t (99999999) (was ESXi 7.0 Update 3s (24585291))",
    ]
    assert changes(before, before) == []


def test_kev_catalog_and_its_dirt() -> None:
    clean = parse_kev((PAGES / "kev.json").read_bytes())
    by_cve = {e.cve: e for e in clean.entries}
    assert set(by_cve) == {"CVE-2025-22224", "CVE-2025-22225", "CVE-2025-22226", "CVE-2024-37085"}
    assert (
        by_cve["CVE-2024-37085"].ransomware is True
        and str(by_cve["CVE-2024-37085"].date_added) == "2024-07-30"
    )
    assert by_cve["CVE-2025-22224"].describe() == "KEV since 2025-03-04, due 2025-03-25"
    dirty = parse_kev((DATA / "kev-dirty.json").read_bytes())
    assert [(e.cve, e.date_added, e.due_date) for e in dirty.entries] == [
        ("CVE-2025-22225", None, None),
        ("CVE-2025-22226", None, None),
    ]
    assert len(dirty.warnings) == 4  # two rows without cveID, two without a readable dateAdded
    assert parse_kev(b"{}").usable is False and parse_kev(b"\x00").usable is False
