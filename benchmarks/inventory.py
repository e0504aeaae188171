"""Inventory refresh against vcsimlab at 1,000 and 5,000 hosts: esxbot vs naive pyvmomi vs raw SOAP.

- esxbot: ``VSphere.refresh()``: ContainerView + one RetrievePropertiesEx on 19 leaf paths,
  byte-scanned by bot/vsphere/soap_scan.py into decoded values, turned into ``bot.model.Host``
  (best and median of ``--repeat``). The ContainerView is kept for the login, as the bot
  keeps it, so it is made during the untimed warm-up refresh.
- naive: ``for h in view.view: h.name, h.summary.config.product.build, h.runtime.connectionState``
  with pyvmomi attribute access (one Fetch per attribute, whole ``summary``/``runtime`` each).
  At 5,000 hosts it walks the first ``--naive-sample`` hosts and scales linearly (marked "~").
- floor: the same RetrievePropertiesEx as esxbot's, sent as raw SOAP on a warm connection and
  timed to the last byte, without parsing (best and median of ``--repeat``).
Like ``esxbot run`` (bot/runtime/cli.py), the process freezes its start-up objects (``gc.freeze()``)
before the first refresh, so a full collection does not walk pyVmomi's type tables.
Ratios use the best times. Peak RSS is this process's high-water mark after each size (it only
grows; the simulator runs in its own process). The 1-minute load average is printed with the
figures, since other work on the machine moves them. Run:
``.venv/bin/python benchmarks/inventory.py [--sizes 1000 5000] [--naive-sample 1000] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyVim.connect import Connect, Disconnect
from pyVmomi import vim

from bot.vsphere import collect
from bot.vsphere.client import VSphere
from bot.vsphere.host_retrieval import PROPERTY_SETS
from bot.vsphere.session import Endpoint, Session
from bot.vsphere.soap import filter_spec, retrieve_request
from tests.fixtures.vcsim import DEFAULT_MODEL, Vcsim, build_vcsimlab, make_certificate, start_vcsim

PAUSE = 0.3  # seconds before each timed call, for both esxbot and the floor: lets vcsim's Go GC settle


def _model(hosts: int) -> dict[str, Any]:
    clusters = max(1, hosts // 100)
    return {
        **DEFAULT_MODEL,
        "clusters": clusters,
        "hosts_per_cluster": hosts // clusters,
        "vms_per_cluster": 0,
    }


def _endpoint(lab: Vcsim) -> Endpoint:
    return Endpoint(
        "bench", lab.host, lab.user, lab.password, port=lab.port, ca_file=str(lab.ca_file), timeout=300
    )


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_esxbot(lab: Vcsim, repeat: int) -> tuple[list[float], int]:
    async def run() -> tuple[list[float], int]:
        vc = VSphere(_endpoint(lab))
        times, count = [], 0
        try:
            await vc.refresh()  # log in and warm the connection, as the floor does
            for _ in range(repeat):
                await asyncio.sleep(PAUSE)
                start = time.perf_counter()
                hosts = await vc.refresh()
                times.append(time.perf_counter() - start)
                count = len(hosts)
        finally:
            await vc.close()
        return times, count

    return asyncio.run(run())


def bench_floor(lab: Vcsim, repeat: int) -> tuple[list[float], int]:
    session = Session(_endpoint(lab))
    try:
        view = collect._create_view(session)
        body = retrieve_request(session.property_collector, filter_spec(view, PROPERTY_SETS), 100_000)
        session.post(body)  # warm the connection
        times, size = [], 0
        for _ in range(repeat):
            time.sleep(PAUSE)
            start = time.perf_counter()
            payload = session.post(body)
            times.append(time.perf_counter() - start)
            size = len(payload)
        return times, size
    finally:
        session.close()


def bench_naive(lab: Vcsim, sample: int) -> tuple[float, int, int]:
    si = Connect(
        host=lab.host,
        port=lab.port,
        user=lab.user,
        pwd=lab.password,
        version="vim.version.v7_0",
        sslContext=ssl.create_default_context(cafile=str(lab.ca_file)),
    )
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
        hosts = list(view.view)
        walked = hosts[:sample]
        start = time.perf_counter()
        for h in walked:
            _ = (h.name, h.summary.config.product.build, h.runtime.connectionState)
        elapsed = time.perf_counter() - start
        view.Destroy()
        return elapsed * len(hosts) / len(walked), len(walked), len(hosts)
    finally:
        Disconnect(si)
        si._stub.DropConnections()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    binary = build_vcsimlab()
    gc.freeze()  # as bot/runtime/cli.py does once start-up is done
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        cert = make_certificate(Path(tmp))
        for size in args.sizes:
            lab = start_vcsim(binary, Path(tmp) / str(size), cert, model=_model(size), timeout=240)
            try:
                load = os.getloadavg()[0]
                esxbot, count = bench_esxbot(lab, args.repeat)
                floor, payload = bench_floor(lab, args.repeat)
                naive, walked, total = bench_naive(lab, args.naive_sample)
            finally:
                lab.stop()
            results.append(
                {
                    "hosts": count,
                    "esxbot_s": round(min(esxbot), 3),
                    "esxbot_median_s": round(statistics.median(esxbot), 3),
                    "floor_s": round(min(floor), 3),
                    "floor_median_s": round(statistics.median(floor), 3),
                    "naive_s": round(naive, 2),
                    "naive_walked": walked,
                    "naive_extrapolated": walked < total,
                    "naive_over_esxbot": round(naive / min(esxbot), 1),
                    "esxbot_over_floor": round(min(esxbot) / min(floor), 2),
                    "response_mb": round(payload / 1e6, 2),
                    "peak_rss_mib": round(_rss_mib(), 1),
                    "load_1min": round(load, 2),
                }
            )
    header = ("hosts", "esxbot s", "(median)", "floor s", "(median)", "naive s", "naive/esxbot",
              "esxbot/floor", "resp MB", "peak RSS MiB", "load")  # fmt: skip
    print(" ".join(f"{h:>12}" for h in header))
    for r in results:
        naive = f"{'~' if r['naive_extrapolated'] else ''}{r['naive_s']}"
        keys = ("esxbot_s", "esxbot_median_s", "floor_s", "floor_median_s")
        rest = ("naive_over_esxbot", "esxbot_over_floor", "response_mb", "peak_rss_mib", "load_1min")
        row = (r["hosts"], *(r[k] for k in keys), naive, *(r[k] for k in rest))
        print(" ".join(f"{v:>12}" for v in row))
    for r in results:
        if r["naive_extrapolated"]:
            print(f"~ naive at {r['hosts']} hosts: walked {r['naive_walked']} hosts, scaled linearly")
    print("goals: naive/esxbot >= 40 at 1,000 hosts; esxbot/floor <= 2; 5,000 hosts in <= 2 s")
    print(json.dumps({"benchmark": "inventory", "results": results}))


if __name__ == "__main__":
    main()
