"""Benchmark: 300 advisories, 1,500 CVEs, 5,000 hosts matched; and the cost of an unchanged list poll.

ours  = bot.advisories.matching.match_all: hosts grouped once by what a verdict depends on (update line,
        build, AD join, USB-controller VMs), each (CVE, group) judged once; then the vulnerable host
        count per advisory (what ``advisories`` shows) read from the groups
naive = Judge.judge for every (CVE, host) pair without grouping, measured on a sample of pairs and
        extrapolated to all 7,500,000
floor = the unavoidable work of any approach: reading every host once (grouping) and every CVE once
poll  = the vmsa-list source polled over a local HTTP server: the first poll parses the 300-row list and
        fetches and parses 300 advisory pages, the second gets a 304 and parses nothing (timed, counted)
Prints a table, then one line of JSON with the figures. Goal: ours <= 1 s; an unchanged poll parses nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

import bot.advisories.poller as poller_module
from bot.advisories.matching import HostGroups, Judge, match_all
from bot.advisories.model import Advisory, Cve, FixedVersion, FixState, KevEntry, LineFix, Verdict
from bot.advisories.poller import AdvisoryPoller
from bot.advisories.service import AdvisoryService
from bot.builds import BuildCatalog, KnownBuild
from bot.clock import FakeClock
from bot.inventory.merged import StaticInventory
from bot.model import Host
from bot.releases.sources.fetch import Fetcher
from bot.releases.sources.poller import SourceConfig, SourceKind
from bot.store.advisory_records import AdvisoryRepo
from bot.store.kv import KeyValueRepo
from bot.store.release_records import ReleaseRepo
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate

ADVISORIES = 300
CVES_PER = 5
HOSTS = 5_000
NAIVE_SAMPLE = 50_000


def _fixed(known: KnownBuild) -> FixedVersion:
    return FixedVersion(f"build {known.build}", FixState.FIXED, known.build, known.version, known.name)


def advisories(catalog: BuildCatalog) -> list[Advisory]:
    rng = random.Random(5)
    lines = {line: catalog.product_line(line) for line in ("7.0", "8.0")}
    found = []
    for n in range(ADVISORIES):
        cves = tuple(
            Cve(f"CVE-2030-{n * CVES_PER + i:05d}", round(rng.uniform(4, 9.8), 1)) for i in range(CVES_PER)
        )
        rows = []
        for line, builds in lines.items():
            if rng.random() < 0.1:
                rows.append(
                    LineFix(
                        line,
                        tuple(c.id for c in cves),
                        (FixedVersion("No patch planned", FixState.NO_PATCH),),
                    )
                )
                continue
            picks = rng.sample(builds, 2)  # two update lines' fixes, as real advisories list
            rows.append(LineFix(line, tuple(c.id for c in cves), tuple(_fixed(k) for k in picks)))
        found.append(Advisory(id=f"VMSA-2030-{n:04d}", severity="critical", cves=cves, lines=tuple(rows)))
    return found


def fleet(catalog: BuildCatalog) -> list[Host]:
    rng = random.Random(11)
    builds = catalog.product_line("7.0") + catalog.product_line("8.0")
    hosts = []
    for i in range(HOSTS):
        known = rng.choice(builds)
        hosts.append(
            Host(
                name=f"esx{i:05d}.example",
                build=known.build,
                version=known.version,
                ad_joined=rng.choice([True, False, None]),
                usb_controller_vms=rng.choice([None, (), ("vm-a",)]),
            )
        )
    return hosts


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def list_response(count: int, base: str) -> bytes:
    rows = [
        {
            "affectedCve": f"CVE-2030-{n:05d}",
            "title": f"VMSA-2030-{n:04d}: VMware ESXi update addresses a vulnerability (CVE-2030-{n:05d})",
            "severity": "IMPORTANT",
            "published": "03 September 2030",
            "updated": "2030-09-03T08:58:26.960422",
            "notificationUrl": f"{base}/page/{n}",
            "workAround": "None",
            "status": "OPEN",
        }
        for n in range(count)
    ]
    return json.dumps({"success": True, "data": {"list": rows, "pageInfo": {"lastPage": 0}}}).encode()


TEMPLATE = Path(__file__).resolve().parents[1] / "bot" / "data" / "advisories" / "VMSA-2025-0004.html"


async def poll_costs(catalog: BuildCatalog, template: str) -> dict[str, Any]:
    """Two polls of a 300-row list over a local server: the second is a 304 and parses nothing."""
    parses: list[str] = []
    original = poller_module.parse_list

    original_page = poller_module.parse_page

    def counted(body: bytes) -> Any:
        parses.append("list")
        return original(body)

    def counted_page(body: bytes, **kwargs: Any) -> Any:
        parses.append("page")
        return original_page(body, **kwargs)

    poller_module.parse_list = counted  # type: ignore[assignment]
    poller_module.parse_page = counted_page  # type: ignore[assignment]
    body: dict[str, bytes] = {}

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=body["list"], content_type="application/json", headers={"ETag": '"v1"'})

    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        text = template.replace("VMSA-2025-0004", f"VMSA-2030-{n:04d}").replace(
            "CVE-2025-2222", f"CVE-2030-{n:04d}"
        )
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    app.router.add_post("/list", handle)
    app.router.add_get("/page/{n}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    body["list"] = list_response(ADVISORIES, base)
    with tempfile.TemporaryDirectory() as folder:
        db = await open_database(f"{folder}/bench.db")
        await migrate(db)
        clock = FakeClock(datetime(2030, 9, 3, tzinfo=UTC))
        fetcher = Fetcher.create()
        service = AdvisoryService(catalog, StaticInventory([], "none", clock.now()), repo=AdvisoryRepo(db))
        source = SourceConfig("vmsa", SourceKind.VMSA_LIST, f"{base}/list")
        poller = AdvisoryPoller(
            [source], fetcher, ReleaseRepo(db), AdvisoryRepo(db), KeyValueRepo(db), clock, catalog, service
        )
        try:
            start = time.perf_counter()
            first = await poller.poll(source)
            first_s = time.perf_counter() - start
            parsed_first = len(parses)
            start = time.perf_counter()
            second = await poller.poll(source)
            second_s = time.perf_counter() - start
        finally:
            await fetcher.close()
            await db.close()
            await runner.cleanup()
            poller_module.parse_list = original
            poller_module.parse_page = original_page
    return {
        "first_s": first_s,
        "first_parses": parsed_first,
        "first_stored": len(first.new),
        "unchanged_s": second_s,
        "unchanged_parses": len(parses) - parsed_first,
        "unchanged_not_modified": second.not_modified,
    }


def main() -> None:
    catalog = BuildCatalog.bundled()
    found = advisories(catalog)
    hosts = fleet(catalog)
    kev = {c.id: KevEntry(c.id) for a in found[:30] for c in a.cves}
    pairs = sum(len(a.cves) for a in found) * len(hosts)
    groups = len(HostGroups(hosts).groups)

    def ours_fn() -> list[int]:
        return [len(r.hosts(Verdict.VULNERABLE)) for r in match_all(found, hosts, catalog, kev)]

    ours = best_of(3, ours_fn)
    counts = ours_fn()
    results = match_all(found, hosts, catalog, kev)
    total = sum(len(hs) for r in results for c in r.cves for _, hs in c.groups)
    assert total == pairs

    start = time.perf_counter()
    materialised = sum(1 for r in results for _ in r.matches())
    with_matches = time.perf_counter() - start
    assert materialised == pairs

    rng = random.Random(3)
    judge = Judge(catalog)
    sample = []
    for _ in range(NAIVE_SAMPLE):
        advisory = rng.choice(found)
        host = rng.choice(hosts)
        sample.append(
            (
                advisory,
                rng.choice(advisory.cve_ids),
                (host.version, host.build, host.ad_joined, host.usb_controller_vms),
            )
        )
    start = time.perf_counter()
    for advisory, cve, key in sample:
        judge.judge(advisory, cve, key)
    naive_pair = (time.perf_counter() - start) / NAIVE_SAMPLE

    def floor_fn() -> None:
        HostGroups(hosts)
        for advisory in found:
            for _cve in advisory.cve_ids:
                pass

    floor = best_of(3, floor_fn)
    poll = asyncio.run(poll_costs(catalog, TEMPLATE.read_text()))

    rows = [
        ("ours: match_all + vulnerable count per advisory", ours),
        ("ours + every pair as a CveMatch with reasons", ours + with_matches),
        (f"naive: judge per pair ({NAIVE_SAMPLE:,} sampled, extrapolated)", naive_pair * pairs),
        ("floor: read every host and every CVE once", floor),
    ]
    print(
        f"{ADVISORIES} advisories x {ADVISORIES * CVES_PER:,} CVEs x {len(hosts):,} hosts = {pairs:,} pairs "
        f"({groups} host groups); vulnerable hosts per advisory: min {min(counts)}, max {max(counts)}"
    )
    print(f"{'way':58} {'total s':>10} {'per pair ns':>12}")
    for label, seconds in rows:
        print(f"{label:58} {seconds:10.4f} {seconds / pairs * 1e9:12.2f}")
    print(
        f"vmsa-list poll, {ADVISORIES} rows: first {poll['first_s']:.3f} s ({poll['first_parses']} parses, "
        f"{poll['first_stored']} stored); unchanged {poll['unchanged_s']:.4f} s "
        f"({poll['unchanged_parses']} parses, 304: {poll['unchanged_not_modified']})"
    )
    print(
        json.dumps(
            {
                "advisories": ADVISORIES,
                "cves": ADVISORIES * CVES_PER,
                "hosts": len(hosts),
                "pairs": pairs,
                "host_groups": groups,
                "ours_s": round(ours, 4),
                "ours_with_matches_s": round(ours + with_matches, 4),
                "naive_s": round(naive_pair * pairs, 2),
                "floor_s": round(floor, 5),
                "goal_s": 1.0,
                "ok": ours <= 1.0 and poll["unchanged_parses"] == 0,
                "poll_first_s": round(poll["first_s"], 4),
                "poll_unchanged_s": round(poll["unchanged_s"], 4),
                "poll_unchanged_parses": poll["unchanged_parses"],
            }
        )
    )


if __name__ == "__main__":
    main()
