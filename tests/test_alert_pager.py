"""Forwarding to PagerDuty Events v2 and a JSON webhook, against local aiohttp receivers on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.alerts.intake import EngineConfig, Signal
from bot.alerts.pager import PagerDutySender, Webhook, WebhookSender, senders_from_extra
from bot.config import Secret
from tests.alert_harness import USB_HOST, RecordingAdapter, alert_rig
from tests.test_alert_engine import BACK, LOSS


@dataclass
class Receiver:
    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before accepting


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def handle(request: web.Request) -> web.Response:
        if got.fail_next:
            status = got.fail_next.pop(0)
            return web.Response(status=status, headers={"Retry-After": "5"} if status == 429 else {})
        raw = await request.read()
        got.bodies.append(json.loads(raw))
        got.headers.append({**dict(request.headers), "_raw": raw.decode()})
        return web.json_response({"status": "success", "message": "Event processed"}, status=202)

    app = web.Application()
    app.router.add_post("/v2/enqueue", handle)
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    got.url = f"http://127.0.0.1:{port}"
    try:
        yield got
    finally:
        await runner.cleanup()


async def test_pagerduty_gets_trigger_ack_resolve_with_one_dedup_key(tmp_path: Path) -> None:
    async with receiver() as pd:
        pd.fail_next = [429, 503]
        sender = PagerDutySender({"default": Secret("R0UTINGKEY")}, url=f"{pd.url}/v2/enqueue")
        adapters = {
            "matrix": RecordingAdapter("matrix"),
            "slack": RecordingAdapter("slack"),
            "pagerduty": sender,
        }
        config = EngineConfig(group_wait=timedelta(0), forward_to=("pagerduty:default",))
        try:
            async with alert_rig(tmp_path, adapters=adapters, config=config) as rig:
                rec = await rig.engine.ingest(LOSS)
                assert rec is not None
                await rig.advance(30)
                assert pd.bodies == []  # 429: waits Retry-After
                await rig.advance(6)
                await rig.advance(3)  # 503: backoff ~1 s, then accepted
                assert [b["event_action"] for b in pd.bodies] == ["trigger"]
                await rig.engine.ack(rec.id, "slack:U0ANN")
                rig.engine = rig.make_engine()  # a restart between the events loses nothing
                await rig.deliver()
                await rig.engine.ingest(BACK)
                await rig.deliver()
                await rig.advance(3600)
        finally:
            await sender.close()
    assert [b["event_action"] for b in pd.bodies] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in pd.bodies} == {"esxbot/kind=bootbank-loss,cluster=-/g1"}  # one per group
    assert all(b["routing_key"] == "R0UTINGKEY" for b in pd.bodies)
    trigger = pd.bodies[0]
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == USB_HOST.name
    assert "lost its bootbank" in trigger["payload"]["summary"]
    assert trigger["payload"]["custom_details"]["boot_device"].startswith("usb")


async def test_webhook_is_signed_and_a_bad_request_is_not_retried(tmp_path: Path) -> None:
    async with receiver() as hook:
        sender = WebhookSender({"ops": Webhook(f"{hook.url}/hook", Secret("s3cret"))})
        adapters = {
            "matrix": RecordingAdapter("matrix"),
            "slack": RecordingAdapter("slack"),
            "webhook": sender,
        }
        try:
            async with alert_rig(
                tmp_path,
                adapters=adapters,
                config=EngineConfig(group_wait=timedelta(0), forward_to=("webhook:ops",)),
            ) as rig:
                await rig.engine.ingest(LOSS)
                await rig.advance(30)
                hook.fail_next = [400]
                await rig.engine.ingest(BACK)
                await rig.deliver()
                await rig.advance(3600)
                failed = await rig.db.fetchall(
                    "SELECT state FROM outbox WHERE platform = 'webhook' ORDER BY id"
                )
        finally:
            await sender.close()
    assert [b["event_action"] for b in hook.bodies] == ["trigger"]
    assert [r["state"] for r in failed] == ["sent", "failed"]
    headers = hook.headers[0]
    expected = hmac.new(b"s3cret", headers["_raw"].encode(), hashlib.sha256).hexdigest()
    assert headers["X-Esxbot-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"].startswith("esxbot/kind=bootbank-loss,cluster=-/g1:")


def test_senders_from_config() -> None:
    senders, targets = senders_from_extra(
        {"pagerduty": {"services": {"default": "k"}}, "webhooks": {"ops": {"url": "http://127.0.0.1:1/x"}}}
    )
    assert [s.platform for s in senders] == ["pagerduty", "webhook"]
    assert targets == ("pagerduty:default", "webhook:ops")
    assert senders_from_extra(None) == ([], ())


async def test_pagerduty_sees_one_incident_for_a_group_of_hosts(tmp_path: Path) -> None:
    hosts = {n: replace(USB_HOST, name=n, cluster="prod-a") for n in ("esx01", "esx02", "esx03")}
    async with receiver() as pd:
        sender = PagerDutySender({"default": Secret("R0UTINGKEY")}, url=f"{pd.url}/v2/enqueue")
        adapters = {
            "matrix": RecordingAdapter("matrix"),
            "slack": RecordingAdapter("slack"),
            "pagerduty": sender,
        }
        config = EngineConfig(group_wait=timedelta(seconds=5), forward_to=("pagerduty:default",))
        try:
            async with alert_rig(tmp_path, adapters=adapters, config=config, hosts=hosts) as rig:
                for name in hosts:
                    await rig.engine.ingest(Signal(name, "bootbank-loss", source="test"))
                await rig.advance(30)
                await rig.advance(5)
                await rig.engine.ack_group(1, "slack:U0ANN")
                await rig.deliver()
                for name in hosts:
                    await rig.engine.ingest(Signal(name, "bootbank-loss", clear=True, source="test"))
                await rig.deliver()
        finally:
            await sender.close()
    assert [b["event_action"] for b in pd.bodies] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in pd.bodies} == {"esxbot/kind=bootbank-loss,cluster=prod-a/g1"}
    trigger = pd.bodies[0]["payload"]
    assert "bootbank lost on 3 hosts of cluster prod-a" in trigger["summary"]
    assert [h["host"] for h in trigger["custom_details"]["hosts"]] == list(hosts)
