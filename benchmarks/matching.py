"""Benchmark: one 100-fix release matched against 5,000 generated hosts, all different.

ours  = bot.releases.matching.match_release: conditions once per fix, the fleet's facts once as bitsets over
        host positions, then per fix a few integer operations decide the verdict of all 5,000 hosts;
        reasons are built only when read (rows below add reading host names, and reasons)
naive = bot.releases.matching.match per pair (regex extraction and evaluation again for every pair),
        measured on a sample of pairs and extrapolated to the full 500,000
floor = the unavoidable per-pair work of any per-pair approach: walking every (fix, host) pair and
        filing the host name
Prints the verdict mix twice, with the facts a static inventory without ``features:`` gives (tags only,
as esxbot knew hosts before feature facts) and with the facts vCenter reports (every feature but RDM
known), then a table (timed on the fleet with facts), then one line of JSON with the figures. Goal: ours
<= 0.5 s with every host different.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.builds import BuildCatalog
from bot.model import FEATURES, BootDevice, BootKind, FeatureFact, Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import VERDICT_ORDER, ReleaseMatches, match, match_release
from bot.releases.sources.release_notes import parse_notes

HOSTS = 5_000
FIXES = 100
NAIVE_SAMPLE = 20_000

TEMPLATES = [
    "Hosts that boot from USB might lose the bootbank when {x}",
    "Servers from Dell with the {d} driver might fail with a purple diagnostic screen when {x}",
    "On HPE ProLiant servers, the {d} driver can report wrong link state when {x}",
    "vSAN clusters might show degraded objects when {x}",
    "vMotion of virtual machines with NVMe controllers fails when {x}",
    "iSCSI sessions drop on hosts after {x}",
    "In clusters on Dell EMC PowerFlex with RDM disks, hosts stop responding when {x}",
    "After an upgrade from ESXi 7.0 Update 2a, the hostd service fails when {x}",
    "The hostd service leaks memory when {x}",
    "Lenovo ThinkSystem servers with SD cards report errors when {x}",
]
EVENTS = [
    "a path fails over",
    "the host reboots",
    "a snapshot is consolidated",
    "the link flaps",
    "load is high",
]
DRIVERS = ["i40en", "ixgben", "lsi_mr3", "nvme_pcie", "smartpqi", "ntg3", "qedentv", "nmlx5_core", "ne1000"]
VENDORS = [
    ("Dell Inc.", "PowerEdge R640"),
    ("HPE", "ProLiant DL380 Gen10"),
    ("Lenovo", "ThinkSystem SR650"),
    ("Supermicro", "SYS-E300-9D"),
    ("Cisco Systems Inc", "UCSC-C220-M5SX"),
    (None, None),
]
TAGS = ["ha", "drs", "vsan", "nvme", "rdm", "powerflex", "nsx", "vmotion", "prod", "dev"]


def release_of_100(catalog: BuildCatalog) -> Release:
    notes = Path(__file__).resolve().parents[1] / "bot" / "data" / "demo" / "notes" / "esxi-70u2c.html"
    release = parse_notes(notes.read_bytes()).release
    assert release is not None
    rng = random.Random(7)
    fixes = list(release.fixes)
    while len(fixes) < FIXES:
        text = rng.choice(TEMPLATES).format(x=rng.choice(EVENTS), d=rng.choice(DRIVERS))
        fixes.append(
            Fix(str(3_000_000 + len(fixes)), text, text + ". This issue is resolved in this release.")
        )
    return Release(
        release.line,
        release.name,
        release.build,
        release.release_date,
        version=release.version,
        fixes=tuple(fixes),
    )


def fleet(catalog: BuildCatalog, cluster_size: int) -> list[Host]:
    """Hosts in clusters of identical hardware, drivers, tags and boot setup (as fleets are built), each
    cluster on one or two builds (a rolling upgrade); ``cluster_size=1`` makes (nearly) every host
    different."""
    rng = random.Random(11)
    builds = [k.build for k in catalog.product_line("7.0")] + [k.build for k in catalog.product_line("8.0")]
    # most clusters still run a 7.0 build older than 7.0 U2c, so most pairs are not simply "fixed"
    older = [
        k.build for k in catalog.update_line("7.0.2") + catalog.update_line("7.0.1") if k.build < 18426014
    ]
    hosts: list[Host] = []
    while len(hosts) < HOSTS:
        vendor, model = rng.choice(VENDORS)
        kinds = [BootKind.USB, BootKind.SD, BootKind.SSD, BootKind.DISK, BootKind.NVME, BootKind.UNKNOWN]
        kind = rng.choice(kinds)
        driver = {BootKind.USB: "vmkusb", BootKind.SD: "vmkusb", BootKind.NVME: "nvme_pcie"}.get(
            kind, "lsi_mr3"
        )
        adapter = {BootKind.USB: "vmhba32", BootKind.SD: "vmhba32"}.get(kind, f"vmhba{rng.randint(0, 3)}")
        boot = BootDevice(kind, f"mpx.{adapter}:C0:T0:L0", adapter, driver)
        drivers = dict.fromkeys(rng.sample(DRIVERS, rng.randint(0, 4)), "1.0")
        tags = frozenset(rng.sample(TAGS, rng.randint(0, 3)))
        cluster_builds = rng.sample(older if rng.random() < 0.8 else builds, 2)
        for _ in range(min(cluster_size, HOSTS - len(hosts))):
            i = len(hosts)
            build = cluster_builds[0] if rng.random() < 0.8 else cluster_builds[1]
            hosts.append(
                Host(
                    name=f"esx{i:05d}.example",
                    build=build,
                    vendor=vendor,
                    model=model,
                    boot_device=boot,
                    drivers=drivers,
                    tags=tags,
                )
            )
    return hosts


def with_vcenter_facts(hosts: list[Host]) -> list[Host]:
    """The same hosts with the feature facts a vCenter inventory gives: every feature but RDM known,
    present where the host's tags say so and on a fifth of the others."""
    rng = random.Random(13)
    return [
        replace(
            host,
            features={
                name: FeatureFact(name in host.tags or rng.random() < 0.2, "vCenter")
                for name in FEATURES
                if name != "rdm"
            },
        )
        for host in hosts
    ]


def mix(result: ReleaseMatches, pairs: int) -> dict[str, int]:
    counts = Counter(v.value for fm in result.fixes for v in VERDICT_ORDER for _ in fm.hosts(v))
    assert sum(counts.values()) == pairs
    return {v.value: counts[v.value] for v in VERDICT_ORDER}


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    catalog = BuildCatalog.bundled()
    rules = MatchRuleSet.bundled()
    release = release_of_100(catalog)
    tags_only = fleet(catalog, cluster_size=1)
    hosts = with_vcenter_facts(tags_only)
    clustered = with_vcenter_facts(fleet(catalog, cluster_size=16))
    pairs = len(release.fixes) * len(hosts)
    before = mix(match_release(release, tags_only, rules, catalog), pairs)
    distinct = len({(h.vendor, h.model, h.boot_device, tuple(h.drivers), h.tags, h.build) for h in hosts})

    ours = best_of(3, lambda: match_release(release, hosts, rules, catalog))
    ours_clustered = best_of(3, lambda: match_release(release, clustered, rules, catalog))
    after = mix(match_release(release, hosts, rules, catalog), pairs)

    def names() -> None:
        for fm in match_release(release, hosts, rules, catalog).fixes:
            for verdict in VERDICT_ORDER:
                fm.hosts(verdict)

    with_names = best_of(3, names)

    def seen_reasons() -> int:
        count = 0
        for fm in match_release(release, hosts, rules, catalog).fixes:
            for position in fm.explainer.positions(fm.bits[0] | fm.bits[1]):
                fm.outcome(position)
                count += 1
        return count

    start = time.perf_counter()
    seen = seen_reasons()
    with_seen = time.perf_counter() - start

    start = time.perf_counter()
    materialised = sum(1 for _ in match_release(release, hosts, rules, catalog).matches())
    with_matches = time.perf_counter() - start
    assert materialised == pairs

    rng = random.Random(3)
    sample = [(rng.choice(release.fixes), rng.choice(hosts)) for _ in range(NAIVE_SAMPLE)]
    start = time.perf_counter()
    for fix, host in sample:
        match(fix, host, release, rules, catalog)
    naive_pair = (time.perf_counter() - start) / NAIVE_SAMPLE

    def walk() -> None:
        for _fix in release.fixes:
            filed: list[str] = []
            for host in hosts:
                filed.append(host.name)

    floor = best_of(3, walk)

    rows = [
        ("ours: match_release, all hosts different", ours, pairs),
        ("ours: match_release, clusters of 16 alike", ours_clustered, pairs),
        ("ours + host names of every verdict, every fix", with_names, pairs),
        (f"ours + reasons of the {seen:,} affected/possibly pairs", with_seen, seen),
        ("ours + every pair as a Match with reasons", with_matches, pairs),
        (f"naive: match per pair ({NAIVE_SAMPLE:,} sampled)", naive_pair * pairs, pairs),
        ("floor: walk every pair, file the name", floor, pairs),
    ]
    print(f"{len(release.fixes)} fixes x {len(hosts):,} hosts ({distinct:,} distinct) = {pairs:,} pairs")
    for label, counts in (("tags only (no feature facts)", before), ("with vCenter feature facts", after)):
        share = counts[Verdict.POSSIBLY_AFFECTED.value] / pairs
        print(
            f"verdicts, {label}: "
            + ", ".join(f"{name} {n:,}" for name, n in counts.items())
            + f" ({share:.0%} possibly)"
        )
    print(f"{'way':50} {'total s':>10} {'per pair us':>12}")
    for label, total, count in rows:
        print(f"{label:50} {total:10.4f} {total / count * 1e6:12.4f}")
    print(f"goal <= 0.5 s (all hosts different): {'met' if ours <= 0.5 else 'MISSED'}")
    print(
        json.dumps(
            {
                "benchmark": "matching",
                "fixes": len(release.fixes),
                "hosts": len(hosts),
                "distinct_hosts": distinct,
                "pairs": pairs,
                "ours_s": round(ours, 4),
                "ours_per_pair_us": round(ours / pairs * 1e6, 4),
                "ours_clustered_s": round(ours_clustered, 4),
                "ours_with_names_s": round(with_names, 4),
                "reasons_seen_pairs": seen,
                "ours_with_seen_reasons_s": round(with_seen, 4),
                "ours_with_all_matches_s": round(with_matches, 4),
                "naive_s_extrapolated": round(naive_pair * pairs, 2),
                "naive_per_pair_us": round(naive_pair * 1e6, 2),
                "floor_s": round(floor, 4),
                "floor_per_pair_us": round(floor / pairs * 1e6, 4),
                "goal_met": ours <= 0.5,
                "verdicts_tags_only": before,
                "verdicts_with_facts": after,
            }
        )
    )


if __name__ == "__main__":
    main()
