"""Release-notes parser: every fixture variant, the real fragments, and hostile input."""

from __future__ import annotations

import html
import re
from datetime import date
from pathlib import Path

import pytest

from bot.releases.sources.release_notes import parse_notes
from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "bot" / "data" / "demo" / "notes"
DATA = ROOT / "tests" / "data" / "notes"

EXPECTED = {
    "u2a": ("ESXi 7.0 Update 2a", 17867351, date(2021, 4, 29)),
    "u2c": ("ESXi 7.0 Update 2c", 18426014, date(2021, 8, 24)),
    "u2d": ("ESXi 7.0 Update 2d", 18538813, date(2021, 9, 14)),
}
FIXTURES = sorted([*DEMO.glob("esxi-70u2*"), *DATA.glob("esxi-70u2*")])

# Where the Resolved Issues part starts and ends in each variant, found without the parser.
_START = re.compile(r"<h2[^>]*>(?:<span>)?Resolved(?:&nbsp;| )Issues|<h2>解決した問題|\nResolved Issues\n=")
_END = re.compile(r"<h2[^>]*>Known Issues|<h2>既知の問題|\nKnown Issues\n=")


def _resolved_prs(raw: str) -> set[str]:
    """PR numbers are the 7-digit numbers of the Resolved Issues part (builds have 8 digits)."""
    start = _START.search(raw)
    end = _END.search(raw)
    assert start and end and start.start() < end.start()
    part = html.unescape(re.sub(r"<[^>]+>", " ", raw[start.end() : end.start()]))
    return set(re.findall(r"(?<![\d.])\d{7}(?![\d.])", part))


def _known_prs(raw: str) -> set[str]:
    end = _END.search(raw)
    assert end
    return set(re.findall(r"PR (\d{7})", raw[end.start() :]))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_parses_completely(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    result = parse_notes(path.read_bytes(), url=path.as_uri())
    key = re.search(r"70(u2\w)", path.name)
    assert key
    name, build, day = EXPECTED[key.group(1)]
    assert result.release is not None, result.warnings
    assert (result.release.name, result.release.build, result.release.release_date) == (name, build, day)
    assert result.release.line == "7.0" and result.release.version == "7.0.2"
    assert f"ESXi-7.0U{key.group(1)[1:]}-{build}-standard" in result.release.image_profiles
    assert {f.pr for f in result.fixes} == _resolved_prs(raw)
    assert not {f.pr for f in result.fixes} & _known_prs(raw)
    assert all(f.title for f in result.fixes)
    assert result.warnings == ()
    assert "1234567" not in raw or all(f.pr != "1234567" for f in result.fixes)


def test_u2c_details() -> None:
    result = parse_notes((DEMO / "esxi-70u2c.html").read_bytes())
    assert result.release is not None
    fixes = {f.pr: f for f in result.fixes}
    assert len(fixes) >= 36
    usb = fixes["2777003"]
    assert usb.component == "Miscellaneous Issues"
    assert "USB" in usb.title and "queue depth" in usb.text
    assert fixes["2761942"].title == fixes["2757263"].title  # two PRs, one entry
    assert fixes["2796588"].cves == ("CVE-2021-3449", "CVE-2021-3450")
    assert "ampersand & or angle brackets < >" in fixes["2515171"].title  # entities decoded
    assert fixes["2762034"].title.startswith("Listed as fixed by ESXi_7.0.2-0.20.18426014")
    assert "ESXi70U2c-18426014" in result.release.bulletins
    assert "ESXi-7.0U2sc-18295176-standard" in result.release.image_profiles
    assert result.known_issue_prs == ("2810123",)
    assert result.release.iso_build is None


def test_pr_without_colon_and_japanese_colons() -> None:
    broadcom = parse_notes((DATA / "esxi-70u2c.broadcom.html").read_bytes())
    fixes = {f.pr: f for f in broadcom.fixes}
    assert fixes["2722263"].title == "Slow boot of hosts that boot from SAN with many LUNs"
    text = parse_notes((DATA / "esxi-70u2c.txt").read_text(encoding="utf-8"))
    assert {f.pr: f.title for f in text.fixes}["2722263"].startswith("Slow boot")
    japanese = parse_notes((DATA / "esxi-70u2c.ja.html").read_bytes())
    ja = {f.pr: f for f in japanese.fixes}
    assert "USB" in ja["2777003"].title and ja["2777003"].component == "その他の問題"
    assert ja["2761942"].component == "ストレージの問題"


def test_u2d_single_fix() -> None:
    result = parse_notes((DEMO / "esxi-70u2d.html").read_bytes())
    assert [f.pr for f in result.fixes] == ["2824750"]
    assert "PowerFlex" in result.fixes[0].title and "RDM" in result.fixes[0].text


def test_unknown_structure_warns_and_keeps_what_it_can() -> None:
    result = parse_notes((DATA / "unknown-structure.html").read_bytes())
    assert result.warnings
    assert result.release is None
    assert [f.pr for f in result.fixes] == ["2777003"]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\xff\xfe garbage \x80", b"<html><body><h2>Resolved Issues</h2></body></html>", "<" * 5000],
)
def test_hostile_input_never_raises(data: bytes | str) -> None:
    result = parse_notes(data)
    assert result.fixes == ()
    assert result.warnings


def _fragments() -> dict[str, str]:
    text = shared_file("notes/release-note-fragments.txt").read_text(encoding="utf-8")
    parts = {}
    for chunk in re.split(r"^=== ", text, flags=re.MULTILINE)[1:]:
        label = chunk.split(".", 1)[0]
        body = chunk.split("\n---\n", 1)[1]
        parts[label] = body.rsplit("\n---", 1)[0]
    return parts


def test_real_fragments() -> None:
    fragments = _fragments()
    assert len(fragments) == 6
    for label, body in fragments.items():
        result = parse_notes(body)
        # PR numbers at the start of an entry line, counted without the parser
        expected = set(re.findall(r"^\s*[-*]?\s*P?R (\d{7})", body, flags=re.MULTILINE))
        assert {f.pr for f in result.fixes} == expected, label
        assert all(f.title for f in result.fixes), label
    f1 = parse_notes(fragments["F1"])
    assert f1.fixes[0].pr == "2409342" and "vmxnet3" in f1.fixes[0].title
    assert f1.name == "ESXi670-201912001"
    f4 = parse_notes(fragments["F4"])
    assert f4.fixes[0].pr == "2777003" and "USB" in f4.fixes[0].title
    f6 = parse_notes(fragments["F6"])
    assert f6.build == 8068406
    assert any("without a PR number" in w for w in f6.warnings)
