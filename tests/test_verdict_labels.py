"""Verdict precision and recall on the hand-labelled set in tests/data/verdicts/labelled.yaml.

"Matters" means ``affected`` or ``possibly-affected``. Precision: of the pairs esxbot says matter, how
many the label says matter; recall: of the pairs the label says matter, how many esxbot says matter.
A labelled-affected pair must never come out ``not-affected`` or ``fixed`` (a missed fix is worse than
an extra "maybe").
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.builds import BuildCatalog
from bot.inventory.static_file import build_lookup, parse_inventory
from bot.model import Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import match_release

LABELLED = Path(__file__).resolve().parent / "data" / "verdicts" / "labelled.yaml"
MATTERS = {Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED}


def _releases(data: dict[str, Any]) -> dict[str, Release]:
    out = {}
    for entry in data["releases"]:
        fixes = tuple(
            Fix(str(f["pr"]), f["title"], f["text"]) for f in data["fixes"] if f["release"] == entry["id"]
        )
        version = str(entry["version"])
        out[entry["id"]] = Release(
            ".".join(version.split(".")[:2]),
            entry["name"],
            entry["build"],
            entry["date"] if isinstance(entry["date"], date) else None,
            version=version,
            fixes=fixes,
        )
    return out


def _verdicts(
    data: dict[str, Any], catalog: BuildCatalog, hosts: list[Host]
) -> dict[tuple[str, str], Verdict]:
    releases = _releases(data)
    fix_ids = {(f["release"], str(f["pr"])): f["id"] for f in data["fixes"]}
    found = {}
    for rid, release in releases.items():
        others = [r for r in releases.values() if r is not release]
        for m in match_release(release, hosts, MatchRuleSet.bundled(), catalog, others=others).matches():
            found[(fix_ids[(rid, m.pr)], m.host)] = m.verdict
    return found


@pytest.fixture(scope="module")
def measured() -> tuple[dict[tuple[str, str], Verdict], dict[tuple[str, str], Verdict]]:
    data = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    catalog = BuildCatalog.bundled()
    hosts = parse_inventory(data["hosts"], str(LABELLED), build_lookup(catalog))
    labels = {
        (fix, host): Verdict(label[0])
        for fix, per_host in data["labels"].items()
        for host, label in per_host.items()
    }
    return labels, _verdicts(data, catalog, hosts)


def test_the_set_is_large_and_complete(measured: tuple[dict[tuple[str, str], Verdict], ...]) -> None:
    labels, found = measured
    assert len(labels) >= 150
    assert set(labels) == set(found), "every (fix, host) pair of the file is labelled, and only those"


def test_precision_and_recall_of_what_matters(measured: tuple[dict[tuple[str, str], Verdict], ...]) -> None:
    labels, found = measured
    said = {pair for pair, verdict in found.items() if verdict in MATTERS}
    truth = {pair for pair, verdict in labels.items() if verdict in MATTERS}
    precision = len(said & truth) / len(said) if said else 1.0
    recall = len(said & truth) / len(truth) if truth else 1.0
    exact = sum(found[pair] is labels[pair] for pair in labels) / len(labels)
    mix = Counter(v.value for v in found.values())
    print(
        f"\nlabelled pairs {len(labels)}: precision {precision:.3f}, recall {recall:.3f}, "
        f"exact verdict {exact:.3f}; verdicts {dict(sorted(mix.items()))}"
    )
    wrong = sorted(
        f"{fix} {host}: labelled {labels[fix, host].value}, got {found[fix, host].value}"
        for fix, host in labels
        if found[fix, host] is not labels[fix, host]
    )
    print("\n".join(wrong))
    missed = [
        pair
        for pair, verdict in labels.items()
        if verdict is Verdict.AFFECTED and found[pair] in (Verdict.NOT_AFFECTED, Verdict.FIXED)
    ]
    assert not missed, f"labelled affected, called not-affected or fixed: {missed}"
    assert precision >= 0.95
    assert recall >= 0.95
