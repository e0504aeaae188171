"""Inventory refresh against vcsimlab at 1,000 and 5,000 hosts: esxbot vs naive pyvmomi vs raw SOAP.

- esxbot: ``VSphere.refresh()``: ContainerView + one RetrievePropertiesEx on 19 leaf paths,
  parsed by bot/vsphere/soap.py (ElementTree), turned into ``bot.model.Host`` (best of 3).
- naive: ``for h in view.view: h.name, h.summary.config.product.build, h.runtime.connectionState``
  with pyvmomi attribute access (one Fetch per attribute, whole ``summary``/``runtime`` each).
  At 5,000 hosts it walks the first ``--naive-sample`` hosts and scales linearly (marked "~").
- floor: the same RetrievePropertiesEx as esxbot's, sent as raw SOAP on a warm connection and
  timed to the last byte, without parsing (best of 3).
Peak RSS is this process's (the simulator runs in its own). Run:
``.venv/bin/python benchmarks/inventory.py [--sizes 1000 5000] [--naive-sample 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
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
from bot.vsphere.inventory import PROPERTY_SETS
from bot.vsphere.session import Endpoint, Session
from bot.vsphere.soap import filter_spec, retrieve_request
from tests.fixtures.vcsim import DEFAULT_MODEL, Vcsim, build_vcsimlab, make_certificate, start_vcsim


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


def bench_esxbot(lab: Vcsim) -> tuple[float, int]:
    async def run() -> tuple[float, int]:
        vc = VSphere(_endpoint(lab))
        best, count = float("inf"), 0
        try:
            for _ in range(3):
                start = time.perf_counter()
                hosts = await vc.refresh()
                best, count = min(best, time.perf_counter() - start), len(hosts)
        finally:
            await vc.close()
        return best, count

    return asyncio.run(run())


def bench_floor(lab: Vcsim) -> tuple[float, int]:
    session = Session(_endpoint(lab))
    try:
        view = collect._create_view(session)
        body = retrieve_request(session.property_collector, filter_spec(view, PROPERTY_SETS), 100_000)
        session.post(body)  # warm the connection
        best, size = float("inf"), 0
        for _ in range(3):
            start = time.perf_counter()
            payload = session.post(body)
            best, size = min(best, time.perf_counter() - start), len(payload)
        return best, size
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
    args = parser.parse_args()
    binary = build_vcsimlab()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        cert = make_certificate(Path(tmp))
        for size in args.sizes:
            lab = start_vcsim(binary, Path(tmp) / str(size), cert, model=_model(size), timeout=240)
            try:
                esxbot, count = bench_esxbot(lab)
                floor, payload = bench_floor(lab)
                naive, walked, total = bench_naive(lab, args.naive_sample)
            finally:
                lab.stop()
            results.append(
                {
                    "hosts": count,
                    "esxbot_s": round(esxbot, 3),
                    "floor_s": round(floor, 3),
                    "naive_s": round(naive, 2),
                    "naive_extrapolated": walked < total,
                    "naive_over_esxbot": round(naive / esxbot, 1),
                    "esxbot_over_floor": round(esxbot / floor, 2),
                    "response_mb": round(payload / 1e6, 2),
                    "peak_rss_mib": round(_rss_mib(), 1),
                }
            )
    print(f"{'hosts':>6} {'esxbot s':>9} {'floor s':>8} {'naive s':>9} {'naive/esxbot':>13} "
          f"{'esxbot/floor':>13} {'resp MB':>8} {'peak RSS MiB':>13}")  # fmt: skip
    for r in results:
        naive = f"{'~' if r['naive_extrapolated'] else ''}{r['naive_s']}"
        print(
            f"{r['hosts']:>6} {r['esxbot_s']:>9} {r['floor_s']:>8} {naive:>9} {r['naive_over_esxbot']:>13} "
            f"{r['esxbot_over_floor']:>13} {r['response_mb']:>8} {r['peak_rss_mib']:>13}"
        )
    print(json.dumps({"benchmark": "inventory", "results": results}))


if __name__ == "__main__":
    main()
