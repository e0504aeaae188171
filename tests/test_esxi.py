"""The bundled build table and the BuildCatalog's ordering and containment rules."""

from __future__ import annotations

import csv
import re
from datetime import date

from bot.builds import BuildCatalog, version_from_name
from bot.model import Release
from tests.shared_data import shared_file


def _name_key(name: str) -> str:
    text = re.sub(r"\[.*?\]|\(version string.*?\)|\(esxi670-update\d\)", "", name.lower())
    text = re.sub(r"\bu(\d)", r"update \1", text)
    return re.sub(r"\s+", " ", text).strip()


def test_bundled_table_agrees_with_shared_csv() -> None:
    catalog = BuildCatalog.bundled()
    with shared_file("builds/esxi_builds.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    compared = 0
    for row in rows:
        known = catalog.lookup(row["build"])
        if known is None:
            continue
        compared += 1
        assert known.version == row["version"], row
        assert _name_key(known.name) == _name_key(row["release_name"]), row
        if row["release_date"] and known.release_date:
            assert known.release_date == date.fromisoformat(row["release_date"]), row
    assert compared >= 100


def test_required_builds_present() -> None:
    catalog = BuildCatalog.bundled()
    for build, name in [
        (17551050, "ESXi 7.0 Update 1d"),
        (17867351, "ESXi 7.0 Update 2a"),
        (18426014, "ESXi 7.0 Update 2c"),
        (18538813, "ESXi 7.0 Update 2d"),
        (20513097, "ESXi 8.0 GA"),
    ]:
        known = catalog.lookup(build)
        assert known is not None and known.name == name
    assert catalog.find("7.0 U2c") == catalog.lookup(18426014)
    assert catalog.find("ESXi 7.0 Update 2d") == catalog.lookup("18538813")
    assert catalog.lookup("garbage") is None


def test_versions_from_names() -> None:
    assert version_from_name("ESXi 7.0 Update 2c") == "7.0.2"
    assert version_from_name("ESXi 7.0b") == "7.0.0"
    assert version_from_name("ESXi 8.0 U1a") == "8.0.1"
    assert version_from_name("VMware ESXi 6.7.0 Update 3") == "6.7.0"
    assert version_from_name("no version here") is None


def _release(catalog: BuildCatalog, build: int) -> Release:
    known = catalog.lookup(build)
    assert known is not None
    return Release(known.line, known.name, known.build, known.release_date, version=known.version)


def test_contains_within_a_line_by_number() -> None:
    catalog = BuildCatalog.bundled()
    u2c = _release(catalog, 18426014)
    assert catalog.contains(17867351, u2c).contained is False
    assert "17867351 is older than 18426014" in catalog.contains(17867351, u2c).reason
    assert catalog.contains(18426014, u2c).contained is True
    assert catalog.contains(18538813, u2c).contained is True
    # the security-only build of the same patch does not carry its bug fixes
    assert catalog.contains(18295176, u2c).contained is False


def test_contains_across_lines_uses_dates_not_numbers() -> None:
    catalog = BuildCatalog.bundled()
    u1e = _release(catalog, 19324898)
    # 7.0 U3c has a LOWER number than 7.0 U1e but is a newer line released earlier: unknown
    assert catalog.contains(19193900, u1e).contained is None
    # 7.0 U3d (2022-03-29) is newer than U1e (2022-02-15): contains it
    assert catalog.contains(19482537, u1e).contained is True
    # an older update line never contains a newer line's release, whatever the numbers say
    u3c = _release(catalog, 19193900)
    assert catalog.contains(19324898, u3c).contained is False
    # unknown build without a version: unknown
    assert catalog.contains(99999999, u3c).contained is None
    assert catalog.contains(99999999, u3c, host_version="7.0.3").contained is True


def test_runtime_extension_and_ordering() -> None:
    catalog = BuildCatalog.bundled()
    size = len(catalog)
    added = catalog.add(Release("7.0", "ESXi 7.0 Update 3w", 24999999, date(2025, 9, 1)))
    assert added is not None and added.version == "7.0.3"
    assert len(catalog) == size + 1
    assert catalog.latest("7.0") == added
    line = catalog.update_line("7.0.2")
    assert [k.build for k in line] == sorted(k.build for k in line)
    assert catalog.latest("7.0.2") == catalog.lookup(19290878)


def test_newer_product_line_released_later_contains_older_line() -> None:
    catalog = BuildCatalog.bundled()
    u2c = _release(catalog, 18426014)
    assert catalog.contains(20513097, u2c).contained is True  # 8.0 GA, 2022-10-11
    assert catalog.contains(23465881, u2c).contained is None  # 8.0 U2b hot patch: no date known
