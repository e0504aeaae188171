"""``/readyz`` over real HTTP: quiet transports never make the instance unready; details stay local.

A pager webhook that never sent anything and a Slack adapter in HTTP mode that nobody called for a
while are normal; if readiness failed on them, Kubernetes would take the pod out of its Service and
Slack could never reach it again. The checks' details (vCenter names, errors) go to loopback clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.alerts.pager import Webhook, WebhookSender
from bot.chat.base import ChatAdapter
from bot.runtime.metrics import Metrics
from bot.runtime.web import Health, WebConfig, serve
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.fixtures.postgres import free_port
from tests.slack_fake import SlackFake
from tests.slack_harness import running_adapter


@contextlib.asynccontextmanager
async def _served(tmp_path: Path, adapters: dict[str, ChatAdapter], config: WebConfig) -> AsyncIterator[str]:
    db = await open_database(str(tmp_path / "web.db"))
    await migrate(db)

    async def vcenter() -> bool:
        raise OSError("vc-prod-01.corp.example: connection refused")

    health = Health(
        db=db, adapters=adapters, metrics=Metrics(), vcenters={"vc-prod-01": vcenter}, config=config
    )
    started = asyncio.Event()
    task = asyncio.create_task(serve(health, ready=started))
    await asyncio.wait_for(started.wait(), 5)
    try:
        yield f"http://{{}}:{config.port}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def _own_address() -> str | None:
    """A non-loopback address of this machine (the one its default route leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route is chosen
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


async def test_a_silent_webhook_and_slack_http_mode_keep_the_instance_ready(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    webhook = WebhookSender({"ops": Webhook("http://127.0.0.1:9/never")})
    config = WebConfig(port=free_port(), stale_after=0.1, self_check_interval=0.05)
    async with running_adapter(slack_fake, tmp_path, mode="http") as (slack, _):
        adapters: dict[str, ChatAdapter] = {"slack": slack, "webhook": webhook}
        async with _served(tmp_path, adapters, config) as base:
            await asyncio.sleep(0.3)  # past stale_after: nobody called Slack, nothing was paged
            status, ready = await _get(f"{base.format('127.0.0.1')}/readyz")
            _, healthz = await _get(f"{base.format('127.0.0.1')}/healthz")
    names = [c["name"] for c in ready["checks"]]  # type: ignore[attr-defined]
    assert "chat:webhook" not in names and "chat:slack" not in names
    assert [c["name"] for c in ready["checks"] if not c["ok"]] == ["vcenter:vc-prod-01"]  # type: ignore[attr-defined]
    assert status == 503  # the vCenter is really down; the quiet transports are not the reason
    assert {t["name"]: t["ok"] for t in healthz["transports"]} == {"chat:slack": True, "chat:webhook": True}  # type: ignore[attr-defined]
    await webhook.close()


async def test_check_details_are_for_loopback_clients_only(tmp_path: Path) -> None:
    own = _own_address()
    if own is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no non-loopback address to test from")
        pytest.skip("this machine has no non-loopback address to test from")
    config = WebConfig(host="0.0.0.0", port=free_port())  # all interfaces: the point of the test
    async with _served(tmp_path, {}, config) as base:
        status, local = await _get(f"{base.format('127.0.0.1')}/readyz")
        remote_status, remote = await _get(f"{base.format(own)}/readyz")
    assert status == remote_status == 503
    assert "vc-prod-01.corp.example" in str(local["checks"])
    assert remote == {"ready": False, "role": "single"}
