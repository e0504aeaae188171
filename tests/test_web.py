"""/healthz, /readyz and /metrics over real HTTP: a real database, a transport whose liveness we steer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.chat.base import CommandHandler, TransportHealth
from bot.messages import Reply
from bot.runtime.leader import LeaderState
from bot.runtime.metrics import Metrics
from bot.runtime.web import Health, WebConfig, serve
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.fixtures.postgres import PostgresServer, free_port


@dataclass
class SteeredTransport:
    """A chat adapter whose connection state and last sign of life the test sets."""

    platform: str
    connected: bool = True
    age: float | None = 1.0

    async def run(self, handle: CommandHandler) -> None:
        await asyncio.Event().wait()

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        return "1"

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        return None

    def health(self) -> TransportHealth:
        return TransportHealth(self.platform, self.connected, self.age, "steered")


@dataclass
class Served:
    base: str
    health: Health
    slack: SteeredTransport
    vcenter_alive: list[bool]
    leadership: LeaderState
    db: Database


async def alert_counts() -> dict[str, int]:
    return {"firing": 2, "acknowledged": 1}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    db = await open_database(str(tmp_path / "bot.db"))
    await migrate(db)
    slack = SteeredTransport("slack")
    console = SteeredTransport("console", age=3600.0)
    vcenter_alive = [True]

    async def vcenter() -> bool:
        return vcenter_alive[0]

    leadership = LeaderState()
    health = Health(
        db=db,
        adapters={"slack": slack, "console": console},
        metrics=Metrics(),
        vcenters={"vc1": vcenter},
        leadership=leadership,
        outbox_stats=OutboxRepo(db).stats,
        alert_counts=alert_counts,
        config=WebConfig(port=free_port(), self_check_interval=0.05),
    )
    started = asyncio.Event()
    task = asyncio.create_task(serve(health, ready=started))
    await asyncio.wait_for(started.wait(), 5)
    try:
        yield Served(f"http://127.0.0.1:{health.config.port}", health, slack, vcenter_alive, leadership, db)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def failing(body: dict[str, object]) -> list[str]:
    checks = body["checks"]
    assert isinstance(checks, list)
    return [c["name"] for c in checks if not c["ok"]]


async def test_healthz_and_readyz_follow_each_dependency(served: Served) -> None:
    assert (await get(f"{served.base}/healthz"))[0] == 200
    status, body = await get_json(f"{served.base}/readyz")
    assert (status, body["ready"], body["role"], failing(body)) == (200, True, "follower", [])

    served.slack.age = 31.0  # silently dead socket: connected, but no pong for 31 s
    status, body = await get_json(f"{served.base}/readyz")
    assert (status, failing(body)) == (503, ["chat:slack"])
    served.slack.connected = False
    served.vcenter_alive[0] = False
    status, body = await get_json(f"{served.base}/readyz")
    assert (status, failing(body)) == (503, ["chat:slack", "vcenter:vc1"])

    served.slack.connected, served.slack.age, served.vcenter_alive[0] = True, 0.5, True
    served.leadership.set_term(7)
    status, body = await get_json(f"{served.base}/readyz")
    assert (status, body["role"], failing(body)) == (200, "leader", [])


async def test_leader_only_transport_is_judged_on_the_leader_only(tmp_path: Path) -> None:
    db = await open_database(str(tmp_path / "l.db"))
    try:
        matrix = SteeredTransport("matrix", connected=False, age=None)
        leadership = LeaderState()
        config = WebConfig(leader_only=frozenset({"matrix"}))
        health = Health(
            db=db, adapters={"matrix": matrix}, metrics=Metrics(), leadership=leadership, config=config
        )
        assert (await health.check()).ready  # a follower does not sync Matrix
        leadership.set_term(3)
        readiness = await health.check()
        assert (readiness.ready, readiness.role) == (False, "leader")
        assert [c.name for c in readiness.checks if not c.ok] == ["chat:matrix"]
    finally:
        await db.close()


async def test_database_down_makes_readyz_fail(served: Served) -> None:
    await served.db.close()
    status, body = await get_json(f"{served.base}/readyz")
    assert (status, failing(body)) == (503, ["database"])


async def test_readyz_database_check_on_postgres_survives_a_dropped_connection(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    db = await open_database(pg_url)
    try:
        health = Health(db=db, adapters={}, metrics=Metrics())
        assert (await health.check()).ready
        postgres_server.terminate("esxbot")
        first = await health.check()
        assert [(c.name, c.ok) for c in first.checks] == [("database", False)]
        assert (await health.check()).ready  # reconnected before the next statement
    finally:
        await db.close()


async def test_self_check_marks_a_stale_transport_and_counts_reconnects(served: Served) -> None:
    served.slack.age = 45.0
    await asyncio.sleep(0.2)
    served.slack.connected = False
    await asyncio.sleep(0.2)
    served.slack.connected, served.slack.age = True, 0.1
    await asyncio.sleep(0.2)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families((await get(f"{served.base}/metrics"))[2])
        for s in family.samples
    }
    assert samples[("esxbot_chat_transport_ready", (("platform", "slack"),))] == 1.0
    assert samples[("esxbot_chat_transport_ready", (("platform", "console"),))] == 1.0
    assert samples[("esxbot_reconnects_total", (("kind", "chat"), ("name", "slack")))] == 1.0


async def test_metrics_parse_and_carry_every_series(served: Served) -> None:
    m = served.health.metrics
    m.command("check", "ok")
    m.command("check", "ok")
    m.command("patch", "denied")
    m.source_poll("broadcom-notes", "ok")
    m.source_poll("broadcom-notes", "error")
    m.inventory_refreshed("vc1", 1.5, 42)
    m.syslog_line(count=10)
    m.syslog_line(dropped=True)
    m.reconnect("vcenter", "vc1")
    repo = OutboxRepo(served.db)
    for i, created in enumerate((1000.0, 1010.0)):
        await repo.add(platform="slack", room="C1", payload="{}", now=created, key=f"k{i}")
    status, content_type, text = await get(f"{served.base}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("esxbot_commands_total", (("command", "check"), ("outcome", "ok")))] == 2.0
    assert samples[("esxbot_commands_total", (("command", "patch"), ("outcome", "denied")))] == 1.0
    assert samples[("esxbot_source_polls_total", (("result", "error"), ("source", "broadcom-notes")))] == 1.0
    assert samples[("esxbot_inventory_hosts", (("vcenter", "vc1"),))] == 42.0
    assert samples[("esxbot_inventory_refresh_seconds_sum", (("vcenter", "vc1"),))] == 1.5
    assert samples[("esxbot_syslog_lines_total", (("result", "received"),))] == 10.0
    assert samples[("esxbot_syslog_lines_total", (("result", "dropped"),))] == 1.0
    assert samples[("esxbot_reconnects_total", (("kind", "vcenter"), ("name", "vc1")))] == 1.0
    assert samples[("esxbot_outbox_pending", ())] == 2.0
    assert samples[("esxbot_outbox_oldest_pending_age_seconds", ())] > 1_000_000
    assert samples[("esxbot_alerts", (("state", "firing"),))] == 2.0
    assert samples[("esxbot_leader", ())] == 0.0
    assert "python_gc_objects_collected" not in families  # own registry, no process-global collectors
