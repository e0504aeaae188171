"""Job, step and host-lock rows for the host-action runner (``bot.actions.runner``).

A job and its host locks are created in one transaction: if any target host is already locked by
another job, nothing is written and ``HostBusy`` names the holder. Job state changes only through
``cas``, an update guarded by the row's ``version`` (which it bumps), so a stale runner changes
nothing. Locks are released when a job ends, whatever the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import from_epoch
from bot.model import Job, JobState, JobStep
from bot.store.sql.base import Database, Row, StoreError

ACTIVE = (JobState.PLANNED.value, JobState.RUNNING.value)
_CAS_COLUMNS = frozenset(
    {"state", "confirmed_by", "current_step", "owner", "result", "progress_key", "cancel_requested"}
)


class HostBusy(Exception):
    """A target host is locked by another job."""

    def __init__(self, host: str, job_id: int) -> None:
        super().__init__(f"host {host} is busy with job #{job_id}")
        self.host = host
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One planned step: what it does, on which host, and whether running it twice could hurt."""

    name: str
    host: str | None = None
    destructive: bool = False


@dataclass(frozen=True, slots=True)
class StepRecord:
    idx: int
    name: str
    host: str | None
    destructive: bool
    started_at: float | None
    ended_at: float | None
    result: str | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str
    state: JobState
    requested_by: str
    confirmed_by: str | None
    conversation: str
    thread: str | None
    targets: tuple[str, ...]
    plan: Mapping[str, Any]
    current_step: int
    cancel_requested: bool
    cancelled_by: str | None
    progress_key: str | None
    owner: str | None
    result: str | None
    created_at: float
    updated_at: float
    version: int
    steps: tuple[StepRecord, ...] = ()

    @property
    def done(self) -> bool:
        return self.state.value not in ACTIVE

    @property
    def step(self) -> StepRecord | None:
        """The step the job is at (the one running, or the next to run)."""
        return self.steps[self.current_step] if self.current_step < len(self.steps) else None

    @property
    def job(self) -> Job:
        def when(value: float | None) -> datetime | None:
            return None if value is None else from_epoch(value)

        return Job(
            id=self.id,
            kind=self.kind,
            state=self.state,
            requested_by=self.requested_by,
            targets=self.targets,
            steps=tuple(
                JobStep(s.name, s.host, when(s.started_at), when(s.ended_at), s.result) for s in self.steps
            ),
            current_step=self.current_step,
            confirmed_by=self.confirmed_by,
            created_at=from_epoch(self.created_at),
            updated_at=from_epoch(self.updated_at),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _step(r: Row) -> StepRecord:
    return StepRecord(
        idx=int(r["idx"]),
        name=r["name"],
        host=r["host"],
        destructive=bool(r["destructive"]),
        started_at=_opt_float(r["started_at"]),
        ended_at=_opt_float(r["ended_at"]),
        result=r["result"],
    )


def _job(r: Row, steps: Sequence[StepRecord]) -> JobRecord:
    return JobRecord(
        id=int(r["id"]),
        kind=r["kind"],
        state=JobState(r["state"]),
        requested_by=r["requested_by"],
        confirmed_by=r["confirmed_by"],
        conversation=r["conversation"],
        thread=r["thread"],
        targets=tuple(json.loads(r["targets"])),
        plan=json.loads(r["plan"]),
        current_step=int(r["current_step"]),
        cancel_requested=bool(r["cancel_requested"]),
        cancelled_by=r["cancelled_by"],
        progress_key=r["progress_key"],
        owner=r["owner"],
        result=r["result"],
        created_at=float(r["created_at"]),
        updated_at=float(r["updated_at"]),
        version=int(r["version"]),
        steps=tuple(steps),
    )


class JobRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        kind: str,
        requested_by: str,
        confirmed_by: str | None,
        conversation: str,
        thread: str | None,
        targets: Sequence[str],
        plan: Mapping[str, Any],
        steps: Sequence[StepSpec],
        now: float,
    ) -> JobRecord:
        """Insert a planned job with its steps and lock every target host; ``HostBusy`` if one is taken."""
        async with self._db.transaction():
            row = await self._db.fetchone(
                "INSERT INTO jobs (kind, state, requested_by, confirmed_by, conversation, thread, targets,"
                " plan, created_at, updated_at) VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    kind,
                    requested_by,
                    confirmed_by,
                    conversation,
                    thread,
                    json.dumps(list(targets)),
                    json.dumps(plan, sort_keys=True, default=str),
                    now,
                    now,
                ),
            )
            if row is None:
                raise StoreError("INSERT … RETURNING gave no row for a new job")
            job_id = int(row["id"])
            for host in dict.fromkeys(targets):
                taken = await self._db.execute(
                    "INSERT INTO host_locks (host, job_id, locked_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (host) DO NOTHING",
                    (host, job_id, now),
                )
                if taken != 1:
                    holder = await self.lock_holder(host)
                    raise HostBusy(host, holder if holder is not None else 0)
            for idx, step in enumerate(steps):
                await self._db.execute(
                    "INSERT INTO job_steps (job_id, idx, name, host, destructive) VALUES (?, ?, ?, ?, ?)",
                    (job_id, idx, step.name, step.host, int(step.destructive)),
                )
        job = await self.get(job_id)
        if job is None:
            raise StoreError(f"job {job_id} vanished after insert")
        return job

    async def get(self, job_id: int) -> JobRecord | None:
        row = await self._db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        steps = await self._db.fetchall("SELECT * FROM job_steps WHERE job_id = ? ORDER BY idx", (job_id,))
        return _job(row, [_step(s) for s in steps])

    async def listing(self, *, active_only: bool = False, limit: int = 20) -> list[JobRecord]:
        where = "WHERE state IN ('planned', 'running')" if active_only else ""
        rows = await self._db.fetchall(
            f"SELECT id FROM jobs {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
            (limit,),
        )
        jobs = [await self.get(int(r["id"])) for r in rows]
        return [j for j in jobs if j is not None]

    async def in_state(self, state: JobState) -> list[JobRecord]:
        rows = await self._db.fetchall("SELECT id FROM jobs WHERE state = ? ORDER BY id", (state.value,))
        jobs = [await self.get(int(r["id"])) for r in rows]
        return [j for j in jobs if j is not None]

    async def cas(self, job_id: int, version: int, *, now: float, **changes: Any) -> bool:
        """Apply ``changes`` only if the row still has ``version``; bumps it. False: someone was first."""
        unknown = set(changes) - _CAS_COLUMNS
        if unknown:
            raise ValueError(f"not a job state column: {sorted(unknown)}")
        names = sorted(changes)
        values = [changes[n].value if isinstance(changes[n], JobState) else changes[n] for n in names]
        assignments = "".join(f"{name} = ?, " for name in names)
        changed = await self._db.execute(
            f"UPDATE jobs SET {assignments}updated_at = ?, version = version + 1"  # noqa: S608 - whitelisted
            " WHERE id = ? AND version = ?",
            (*values, now, job_id, version),
        )
        return changed == 1

    async def request_cancel(self, job_id: int, *, by: str, now: float) -> bool:
        """Ask a planned or running job to stop before its next step (not a state change: no fence)."""
        changed = await self._db.execute(
            "UPDATE jobs SET cancel_requested = 1, cancelled_by = ?, updated_at = ?"
            " WHERE id = ? AND state IN ('planned', 'running')",
            (by, now, job_id),
        )
        return changed == 1

    async def start_step(self, job_id: int, idx: int, now: float) -> None:
        await self._db.execute(
            "UPDATE job_steps SET started_at = ?, ended_at = NULL, result = NULL"
            " WHERE job_id = ? AND idx = ?",
            (now, job_id, idx),
        )

    async def end_step(self, job_id: int, idx: int, result: str, now: float) -> None:
        await self._db.execute(
            "UPDATE job_steps SET ended_at = ?, result = ? WHERE job_id = ? AND idx = ?",
            (now, result[:1000], job_id, idx),
        )

    async def next_edit(self, job_id: int) -> int:
        """A fresh number for the next in-place progress edit (idempotent outbox keys across restarts)."""
        row = await self._db.fetchone(
            "UPDATE jobs SET progress_edits = progress_edits + 1 WHERE id = ? RETURNING progress_edits",
            (job_id,),
        )
        return 0 if row is None else int(row["progress_edits"])

    async def lock_holder(self, host: str) -> int | None:
        row = await self._db.fetchone("SELECT job_id FROM host_locks WHERE host = ?", (host,))
        return None if row is None else int(row["job_id"])

    async def release_locks(self, job_id: int) -> int:
        return await self._db.execute("DELETE FROM host_locks WHERE job_id = ?", (job_id,))

    async def heartbeat(self, owner: str, now: float) -> int:
        """A live runner's mark on its running jobs (not a state change: the version stays)."""
        return await self._db.execute(
            "UPDATE jobs SET updated_at = ? WHERE owner = ? AND state = 'running'", (now, owner)
        )
