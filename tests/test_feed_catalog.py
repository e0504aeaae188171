"""JSON build catalogs (virten esxiReleases.json shape) and Atom feeds parsed from bytes."""

from __future__ import annotations

import json
from datetime import date

from bot.releases.sources.atom import parse_feed
from bot.releases.sources.json_catalog import parse_catalog
from tests.shared_data import shared_file


def test_real_virten_catalog_loads_completely_and_clean() -> None:
    path = shared_file("feeds/virten-esxiReleases.2020-02-20.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = parse_catalog(path.read_bytes(), url=path.as_uri())
    raw_lines = {int(r["build"]): r["minorRelease"].strip() for r in raw["data"]["esxiReleases"]}
    assert len(result.releases) == len(raw["data"]["esxiReleases"]) == raw["totalCount"] == 254
    for release in result.releases:
        for value in (release.name, *release.image_profiles, *release.bulletins):
            assert value == value.strip() and "  " not in value and "\t" not in value and "\n" not in value
        assert all(p.startswith("ESXi-") for p in release.image_profiles)
        assert release.line == raw_lines[release.build]
        assert release.release_date is not None
    by_build = {r.build: r for r in result.releases}
    assert by_build[13981272].image_profiles == ("ESXi-6.7.0-20190604001-standard",)
    assert by_build[10176752].bulletins == ("ESXi670-201810001",)
    assert by_build[15256549].image_profiles == ("ESXi-6.5.0-20191204001-standard",)
    assert by_build[15169789].name == "ESXi 6.0 Express Patch 23"
    assert by_build[15160138].version == "6.7.0" and by_build[15160138].release_date == date(2019, 12, 5)
    # the row whose full name names another build keeps its own build, with a warning
    assert 9214924 in by_build
    assert any("names build 8941472" in w for w in result.warnings)


def test_bad_catalogs_warn() -> None:
    assert parse_catalog(b"{not json").warnings
    assert parse_catalog(b'{"data": {}}').warnings
    odd = parse_catalog(b'[{"build": "x"}, 3, {"build": " 17867351\\n", "minorRelease": "7.0"}]')
    assert [r.build for r in odd.releases] == [17867351]
    assert len(odd.warnings) == 2


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>ESXi releases</title><id>urn:x</id>
<updated>2021-08-24T00:00:00Z</updated>
<entry><id>urn:esxi:18426014</id><title>VMware ESXi 7.0 Update 2c (build 18426014)</title>
<link href="http://example.invalid/notes/u2c.html"/><updated>2021-08-24T10:00:00Z</updated>
<summary>Bug fixes</summary></entry>
<entry><id>urn:blog:1</id><title>Unrelated post</title><updated>2021-08-20T10:00:00Z</updated></entry>
</feed>"""


def test_atom_entries() -> None:
    result = parse_feed(ATOM)
    assert result.title == "ESXi releases" and not result.warnings
    first = result.entries[0]
    assert (first.release_name, first.build, first.release_date) == (
        "ESXi 7.0 Update 2c",
        18426014,
        date(2021, 8, 24),
    )
    assert result.entries[1].build is None


def test_malformed_feed_warns() -> None:
    result = parse_feed(b"<feed><entry><title>broken")
    assert result.warnings
    assert parse_feed(b"\x00\x01 not xml").warnings
