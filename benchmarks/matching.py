"""Benchmark: one 100-fix release matched against 5,000 generated hosts.

ours  = bot.matching.match_release (conditions once per fix, facts once per host, verdict lookup per pair)
naive = bot.matching.match per pair (regex extraction and evaluation again for every pair), measured on a
        sample of pairs and extrapolated to the full 500,000
floor = the unavoidable per-pair work: walking every (fix, host) pair and filing the host name
Prints a table, then one line of JSON with the figures. Goal: ours <= 0.5 s.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from bot.esxi import BuildCatalog
from bot.feeds.notes import parse_notes
from bot.match_rules import RuleSet
from bot.matching import match, match_release
from bot.model import BootDevice, BootKind, Fix, Host, Release

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
    cluster on one or two builds (a rolling upgrade); ``cluster_size=1`` makes every host different."""
    rng = random.Random(11)
    builds = [k.build for k in catalog.product_line("7.0")] + [k.build for k in catalog.product_line("8.0")]
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
        cluster_builds = rng.sample(builds, 2)
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


def main() -> None:
    catalog = BuildCatalog.bundled()
    rules = RuleSet.bundled()
    release = release_of_100(catalog)
    hosts = fleet(catalog, cluster_size=16)
    pairs = len(release.fixes) * len(hosts)

    distinct = fleet(catalog, cluster_size=1)
    start = time.perf_counter()
    match_release(release, distinct, rules, catalog)
    worst = time.perf_counter() - start

    start = time.perf_counter()
    result = match_release(release, hosts, rules, catalog)
    ours = time.perf_counter() - start
    grouped = sum(len(h) for f in result.fixes for _, h in f.groups)
    assert grouped == pairs

    start = time.perf_counter()
    materialised = sum(1 for _ in result.matches())
    as_matches = time.perf_counter() - start

    rng = random.Random(3)
    sample = [(rng.choice(release.fixes), rng.choice(hosts)) for _ in range(NAIVE_SAMPLE)]
    start = time.perf_counter()
    for fix, host in sample:
        match(fix, host, release, rules, catalog)
    naive_pair = (time.perf_counter() - start) / NAIVE_SAMPLE

    start = time.perf_counter()
    for _fix in release.fixes:
        filed: list[str] = []
        for host in hosts:
            filed.append(host.name)
    floor = time.perf_counter() - start

    rows = [
        ("ours (match_release, clusters of 16 hosts)", ours, ours / pairs),
        ("ours, worst case: all 5,000 hosts different", worst, worst / pairs),
        ("ours + every pair as a Match object", ours + as_matches, (ours + as_matches) / materialised),
        (f"naive (match per pair, {NAIVE_SAMPLE:,} sampled)", naive_pair * pairs, naive_pair),
        ("floor (walk pairs, file names)", floor, floor / pairs),
    ]
    print(f"{len(release.fixes)} fixes x {len(hosts):,} hosts = {pairs:,} pairs")
    print(f"{'way':45} {'total s':>10} {'per pair us':>12}")
    for label, total, per in rows:
        print(f"{label:45} {total:10.3f} {per * 1e6:12.3f}")
    print(f"goal <= 0.5 s: {'met' if ours <= 0.5 else 'MISSED'}")
    print(
        json.dumps(
            {
                "benchmark": "matching",
                "fixes": len(release.fixes),
                "hosts": len(hosts),
                "pairs": pairs,
                "ours_s": round(ours, 4),
                "ours_per_pair_us": round(ours / pairs * 1e6, 3),
                "ours_with_matches_s": round(ours + as_matches, 4),
                "ours_all_hosts_different_s": round(worst, 4),
                "naive_s_extrapolated": round(naive_pair * pairs, 2),
                "naive_per_pair_us": round(naive_pair * 1e6, 2),
                "floor_s": round(floor, 4),
                "floor_per_pair_us": round(floor / pairs * 1e6, 4),
                "goal_met": ours <= 0.5,
            }
        )
    )


if __name__ == "__main__":
    main()
