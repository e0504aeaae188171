"""Leader election: the SQLite single-instance lock, fencing tokens, PostgreSQL advisory-lock failover."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.runtime.leader import (
    AlreadyRunning,
    Fence,
    LeaderState,
    LeaderTiming,
    NotLeader,
    PostgresLeader,
    SingleInstance,
    open_leadership,
    run_while_leader,
)
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.fixtures.postgres import PostgresServer

# a long lease: a loaded CI machine must not end a term by a slow heartbeat; a cut connection ends it at once
FAST = LeaderTiming(heartbeat=0.2, lease=5.0, retry=0.2, keepalive_idle=2, keepalive_interval=1)


async def opened(url: str) -> Database:
    db = await open_database(url)
    await migrate(db)
    return db


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await opened(str(tmp_path / "bot.db"))
    yield db
    await db.close()


async def test_sqlite_refuses_a_second_instance(tmp_path: Path, sqlite_db: Database) -> None:
    path = str(tmp_path / "bot.db")
    first = SingleInstance.acquire(sqlite_db, path)
    with pytest.raises(AlreadyRunning, match=r"already running on .*bot\.db.*PostgreSQL"):
        SingleInstance.acquire(sqlite_db, path)
    other = subprocess.run(
        [sys.executable, "-c", "import sys, asyncio; from bot.runtime.leader import SingleInstance as S;"
         f" S.acquire(None, {path!r})"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert other.returncode != 0
    assert "AlreadyRunning" in other.stderr and "already running" in other.stderr
    first.release()
    SingleInstance.acquire(sqlite_db, path).release()


async def test_sqlite_instance_leads_with_a_new_term_each_start(tmp_path: Path, sqlite_db: Database) -> None:
    for term in (1, 2):
        leadership = await open_leadership(str(tmp_path / "bot.db"), sqlite_db)
        task = asyncio.create_task(leadership.run())
        await asyncio.wait_for(leadership.wait(True), 5)
        assert leadership.token == term
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not leadership.is_leader


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_fence_guard_refuses_an_ended_term(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "f.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    db = await opened(url)
    try:
        fence = Fence(db)
        assert await fence.current() == 0
        old = await fence.advance()
        new = await fence.advance()
        assert (old, new, await fence.current()) == (1, 2, 2)
        async with fence.guard(new):
            await db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('step', 'done', 0)")
        with pytest.raises(NotLeader, match="term 1 has ended"):
            async with fence.guard(old):
                await db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('stale', 'x', 0)")
        assert await db.fetchone("SELECT value FROM kv WHERE key = 'stale'") is None
    finally:
        await db.close()


async def test_run_while_leader_starts_on_gain_and_cancels_on_loss() -> None:
    state = LeaderState()
    events: list[str] = []
    crashed = 0

    async def poller() -> None:
        events.append("start")
        try:
            await asyncio.Event().wait()
        finally:
            events.append("stop")

    async def flaky() -> None:
        nonlocal crashed
        crashed += 1
        raise RuntimeError("boom")

    runner = asyncio.create_task(run_while_leader(state, {"poll": poller, "flaky": flaky}))
    await asyncio.sleep(0.05)
    assert events == []
    state.set_term(1)
    await asyncio.sleep(0.05)
    assert events == ["start"]
    state.set_term(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert events == ["start", "stop"]
    state.set_term(2)
    await asyncio.sleep(0.05)
    assert events == ["start", "stop", "start"]
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert events == ["start", "stop", "start", "stop"]
    assert crashed == 2  # crashed once per term; restarts wait a second


async def test_postgres_one_leader_and_failover_when_its_connection_dies(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    db = await opened(pg_url)
    leaders = {n: PostgresLeader(pg_url, db, timing=FAST, application_name=f"esxbot-{n}") for n in "ab"}
    changes: list[tuple[str, bool]] = []
    for n, leader in leaders.items():
        leader.subscribe(lambda on, n=n: changes.append((n, on)))
    tasks = [asyncio.create_task(leader.run()) for leader in leaders.values()]
    try:
        await asyncio.wait_for(wait_any(leaders), 5)
        await asyncio.sleep(0.6)  # several follower retries and leader heartbeats
        first = next(n for n, leader in leaders.items() if leader.is_leader)
        other = "b" if first == "a" else "a"
        assert [leader.token for leader in leaders.values()].count(1) == 1
        assert not leaders[other].is_leader
        assert postgres_server.terminate(f"esxbot-{first}") == 1
        await asyncio.wait_for(leaders[other].wait(True), 5)
        # the server may free the lock before the old leader's next heartbeat notices (fencing covers
        # it): the old leader steps down within a heartbeat or two, not necessarily before
        await asyncio.wait_for(leaders[first].wait(False), 5)
        assert leaders[other].token == 2
        assert sorted(changes[:3]) == sorted([(first, True), (first, False), (other, True)])
        await asyncio.sleep(1.0)  # the old leader reconnects and stays a follower
        assert (leaders[first].is_leader, leaders[other].is_leader) == (False, True)
        assert await Fence(db).current() == 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.close()


async def wait_any(leaders: dict[str, PostgresLeader]) -> None:
    waits = [asyncio.create_task(leader.wait(True)) for leader in leaders.values()]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
