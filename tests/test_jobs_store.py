"""Job rows on SQLite and PostgreSQL: host locks by primary key, fenced state changes, steps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.actions.runner import ORPHANED_AFTER, JobRunner
from bot.chat.outbox import Outbox
from bot.clock import FakeClock
from bot.model import JobState
from bot.store.audit import AuditRepo
from bot.store.job_records import HostBusy, JobRepo, StepSpec
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from bot.store.subscriptions import SubscriptionRepo


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'jobs.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    database = await open_database(url)
    await migrate(database)
    yield database
    await database.close()


async def _create(repo: JobRepo, targets: list[str], by: str = "console:otto") -> int:
    job = await repo.create(
        kind="patch",
        requested_by=by,
        confirmed_by=by,
        conversation="console:console",
        thread=None,
        targets=targets,
        plan={"target": "7.0 U2c"},
        steps=[StepSpec("enter-maintenance", t, destructive=False) for t in targets]
        + [StepSpec("install", t, destructive=True) for t in targets],
        now=100.0,
    )
    return job.id


async def test_one_job_per_host_and_locks_are_all_or_nothing(db: Database) -> None:
    repo = JobRepo(db)
    first = await _create(repo, ["esx-a", "esx-b"])
    with pytest.raises(HostBusy) as busy:
        await _create(repo, ["esx-c", "esx-b"], by="console:olga")
    assert (busy.value.host, busy.value.job_id) == ("esx-b", first)
    assert await repo.lock_holder("esx-c") is None  # the refused job left nothing behind
    assert [j.id for j in await repo.listing()] == [first]
    assert await repo.release_locks(first) == 2
    second = await _create(repo, ["esx-c", "esx-b"], by="console:olga")
    assert await repo.lock_holder("esx-b") == second


async def test_state_changes_are_fenced_and_steps_recorded(db: Database) -> None:
    repo = JobRepo(db)
    job = await repo.get(await _create(repo, ["esx-a"]))
    assert job is not None and job.state is JobState.PLANNED and len(job.steps) == 2
    assert await repo.cas(job.id, job.version, now=101.0, state=JobState.RUNNING, owner="r1")
    assert not await repo.cas(job.id, job.version, now=102.0, state=JobState.FAILED)  # stale version
    await repo.start_step(job.id, 0, 103.0)
    await repo.end_step(job.id, 0, "ok", 104.0)
    assert await repo.request_cancel(job.id, by="console:olga", now=105.0)
    assert await repo.next_edit(job.id) == 1 and await repo.next_edit(job.id) == 2
    again = await repo.get(job.id)
    assert again is not None
    assert (again.state, again.owner, again.cancel_requested, again.cancelled_by) == (
        JobState.RUNNING,
        "r1",
        True,
        "console:olga",
    )
    assert (again.steps[0].result, again.steps[0].ended_at, again.steps[1].destructive) == ("ok", 104.0, True)
    assert again.job.steps[0].result == "ok"
    with pytest.raises(ValueError, match="not a job state column"):
        await repo.cas(job.id, again.version, now=1.0, kind="reboot")


async def test_another_instances_live_job_is_left_alone_until_its_heartbeats_stop(db: Database) -> None:
    clock = FakeClock(datetime.fromtimestamp(1000.0, UTC))
    repo = JobRepo(db)
    job = await repo.get(await _create(repo, ["esx-a"]))
    assert job is not None
    assert await repo.cas(job.id, job.version, now=1000.0, owner="other-instance", state=JobState.RUNNING)
    runner = JobRunner(
        repo, Outbox(OutboxRepo(db), SubscriptionRepo(db), clock), AuditRepo(db), clock, actions={}
    )
    assert await repo.heartbeat("other-instance", 1000.0) == 1
    assert await runner.recover(stale_after=ORPHANED_AFTER) == []  # its runner is alive
    clock.advance(ORPHANED_AFTER + 1)
    [report] = await runner.recover(stale_after=ORPHANED_AFTER)
    assert report.id == job.id and report.state is JobState.INTERRUPTED
    assert await repo.lock_holder("esx-a") is None
