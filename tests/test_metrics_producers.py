"""``/metrics`` counts what the producers did: a source poll against the local release site, inventory
refreshes against vcsimlab, a confirmed maintenance job run by the app's own job runner, and the
reconnect after the simulator restarts, all read over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config import AuthSettings, Secret, Settings, VCenterSettings
from bot.messages import Command, Confirm, Conversation, User
from bot.runtime.app import App
from bot.runtime.web import serve
from tests.fixtures.feed_site import Site, catalog
from tests.fixtures.postgres import free_port
from tests.fixtures.vcsim import VcsimFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def confirmed_job(app: App, text: str) -> int:
    async def say(words: str) -> dict[str, object]:
        command = Command(
            User("console:otto"), Conversation("console", "ops"), words, sent_at=app.services.clock.now()
        )
        reply = await app.handle(command)
        assert reply.ok, reply.summary
        tokens = [b.token for b in reply.blocks if isinstance(b, Confirm)]
        return {"token": tokens[0]} if tokens else dict(reply.data)

    preview = await say(text)
    started = await say(f"yes {preview['token']}")
    return int(str(started["job"]))


async def test_metrics_come_from_the_real_producers(
    vcsim_factory: VcsimFactory, site: Site, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    site.docs["/catalog.json"] = (
        catalog([("17867351", "ESXi 7.0 Update 2a", "2021-04-29")]),
        "application/json",
    )
    vc = VCenterSettings(
        name="lab", host=lab.host, port=lab.port, user=lab.user, password=Secret(lab.password),
        ca_file=str(lab.ca_file),
    )  # fmt: skip
    settings = Settings(
        database_url=str(tmp_path / "esxbot.db"),
        demo=False,
        vcenters=(vc,),
        web_port=free_port(),
        auth=AuthSettings(roles={"console:otto": "operator"}),
        base_dir=str(tmp_path),
        extra={"sources": [{"name": "site", "kind": "catalog", "url": f"{site.base}/catalog.json"}]},
    )
    app = await App.open(settings)
    vsphere = app.vcenters[0]
    ready = asyncio.Event()
    web = asyncio.create_task(serve(app.health(None), ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        assert app.poller is not None
        await app.poller.poll_all()
        await app.poller.poll_all()  # 304 the second time
        watching = asyncio.create_task(vsphere.run())
        for _ in range(200):
            if vsphere.hosts():
                break
            await asyncio.sleep(0.05)
        job = await confirmed_job(app, "maintenance enter esx-usb-01")
        assert app.services.jobs is not None
        assert (await app.services.jobs.wait(job)).state.value == "succeeded"
        lab.stop()
        lab.start()
        samples: Samples = {}
        for _ in range(400):
            samples = await scrape(settings.web_port)
            if samples.get(("esxbot_reconnects_total", (("kind", "vcenter"), ("name", "lab"))), 0) >= 1:
                break
            await asyncio.sleep(0.05)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    finally:
        web.cancel()
        await asyncio.gather(web, return_exceptions=True)
        await app.close()
    polls = "esxbot_source_polls_total"
    assert samples[(polls, (("result", "ok"), ("source", "site")))] == 1.0
    assert samples[(polls, (("result", "not-modified"), ("source", "site")))] == 1.0
    assert samples[("esxbot_inventory_hosts", (("vcenter", "lab"),))] == len(lab.hosts())
    assert samples[("esxbot_inventory_refresh_seconds_count", (("vcenter", "lab"),))] >= 2.0
    assert samples[("esxbot_inventory_refresh_seconds_sum", (("vcenter", "lab"),))] > 0.0
    jobs = "esxbot_jobs_total"
    assert samples[(jobs, (("kind", "maintenance-enter"), ("state", "succeeded")))] == 1.0
    assert samples[("esxbot_reconnects_total", (("kind", "vcenter"), ("name", "lab")))] >= 1.0
