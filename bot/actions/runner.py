"""The host-action job runner: durable state machines for patch, shutdown, reboot, maintenance, power-on.

A job is created with its steps and host locks in one transaction (``JobRepo.create``), then run
step by step in a background task. Every step is recorded (start, end, result) and audited, and the
progress message in the thread under the command is edited in place through the outbox. Before each
step the runner re-reads the job: ``cancel`` stops it there (a running vCenter task is not killed).
The first failing step ends the job as ``failed``; what state each host is left in is in the report.

After a restart, ``recover`` marks every job still ``running`` as ``interrupted``, with the step it
was in and each host's real state read from vCenter, and posts that report. Nothing is re-run: the
operator runs the command again, which takes a new confirmation and new pre-checks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.actions.bmc import BmcDirectory
from bot.actions.esxcli import EsxcliError, EsxcliInstaller
from bot.actions.job_card import render
from bot.actions.job_settings import JobSettings
from bot.actions.redfish import RedfishClient, RedfishError
from bot.actions.steps import StepFailed, execute
from bot.chat.outbox import Outbox
from bot.clock import Clock
from bot.messages import Reply
from bot.model import Host, JobState
from bot.store.audit import AuditRepo
from bot.store.job_records import JobRecord, JobRepo, StepRecord, StepSpec
from bot.vsphere.host_ops import ActionError, ClusterImageOps, HostOps, HostState

log = logging.getLogger(__name__)

HEARTBEAT = 10.0  # seconds between a runner's "still alive" marks on its running jobs
ORPHANED_AFTER = 6 * HEARTBEAT  # with several instances: a running job this quiet has lost its runner


@dataclass(frozen=True, slots=True)
class JobRequest:
    kind: str
    requested_by: str
    confirmed_by: str | None
    conversation: str
    thread: str | None
    hosts: tuple[Host, ...]
    plan: Mapping[str, Any]
    steps: tuple[StepSpec, ...]


@dataclass(slots=True)
class _Stop:
    """Why a job's lanes stop starting steps: a failure (the first one wins) or a cancel."""

    reason: str | None = None
    failed: tuple[StepRecord, Exception] | None = None
    stale: bool = False


def _lanes(job: JobRecord, width: int) -> list[list[int]]:
    """Steps still to run; with ``width`` > 1, one lane per host (its steps are contiguous)."""
    todo = [s for s in job.steps if s.idx >= job.current_step]
    if width <= 1:
        return [[s.idx for s in todo]] if todo else []
    lanes: dict[str | None, list[int]] = {}
    for s in todo:
        lanes.setdefault(s.host, []).append(s.idx)
    return list(lanes.values())


class JobRunner:
    """Runs jobs of this bot instance; ``owner`` tells its jobs apart from another instance's."""

    def __init__(
        self,
        repo: JobRepo,
        outbox: Outbox,
        audit: AuditRepo,
        clock: Clock,
        *,
        actions: Mapping[str, HostOps],
        bmcs: BmcDirectory | None = None,
        settings: JobSettings | None = None,
        lifecycle: Mapping[str, ClusterImageOps] | None = None,
    ) -> None:
        self.repo = repo
        self.settings = settings or JobSettings()
        self.owner = secrets.token_hex(6)
        self._outbox = outbox
        self._audit = audit
        self._clock = clock
        self._actions = dict(actions)
        self._bmcs = bmcs
        self._lifecycle = dict(lifecycle or {})
        self.esxcli = EsxcliInstaller(self.settings.esxcli) if self.settings.esxcli else None
        self._advance = asyncio.Lock()
        self._tasks: dict[int, asyncio.Task[JobRecord]] = {}
        self._hosts: dict[str, Host] = {}
        self._scratch: dict[tuple[int, str], Any] = {}
        self.on_outcome: Callable[[str, str], None] | None = None  # (kind, final state): metrics

    # --- where things are -------------------------------------------------------------------

    def actions_for(self, host: Host) -> HostOps | None:
        if host.vcenter and host.vcenter in self._actions:
            return self._actions[host.vcenter]
        return next(iter(self._actions.values())) if len(self._actions) == 1 else None

    def lifecycle_for(self, host: Host) -> ClusterImageOps | None:
        if host.vcenter and host.vcenter in self._lifecycle:
            return self._lifecycle[host.vcenter]
        return next(iter(self._lifecycle.values())) if len(self._lifecycle) == 1 else None

    def has_bmc(self, host: Host) -> bool:
        return self._bmcs is not None and self._bmcs.find(host_name=host.name, serial=host.serial) is not None

    async def state_of(self, host: Host) -> HostState | None:
        actions = self.actions_for(host)
        if actions is None:
            return None
        try:
            return await actions.state(host.name)
        except (ActionError, OSError) as exc:
            log.warning("cannot read the state of %s: %s", host.name, exc)
            return None

    # --- lifecycle ----------------------------------------------------------------------------

    async def submit(self, request: JobRequest) -> JobRecord:
        """Create the job (locks its hosts or raises ``HostBusy``), post its card, start running it."""
        now = self._clock.now().timestamp()
        job = await self.repo.create(
            kind=request.kind,
            requested_by=request.requested_by,
            confirmed_by=request.confirmed_by,
            conversation=request.conversation,
            thread=request.thread,
            targets=[h.name for h in request.hosts],
            plan=request.plan,
            steps=request.steps,
            now=now,
        )
        for host in request.hosts:
            self._hosts[host.name] = host
        key = f"job-{job.id}-progress"
        await self.repo.cas(
            job.id, job.version, now=now, progress_key=key, owner=self.owner, state=JobState.RUNNING
        )
        job = await self._reload(job.id)
        await self._outbox.enqueue(job.conversation, render(job), thread=job.thread, key=key)
        self._tasks[job.id] = asyncio.create_task(self._run(job.id), name=f"job-{job.id}")
        return job

    async def wait(self, job_id: int) -> JobRecord:
        """Until the job's task ends (tests, shutdown); the stored record."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return await self._reload(job_id)

    async def close(self) -> None:
        """Stop waiting on running jobs; their rows stay ``running`` and the next start reports them."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def cancel(self, job_id: int, *, by: str) -> JobRecord | None:
        if not await self.repo.request_cancel(job_id, by=by, now=self._clock.now().timestamp()):
            return None
        job = await self._reload(job_id)
        await self._progress(job, f"Cancel requested by {by}: stopping before the next step.")
        return job

    async def heartbeat(self, interval: float = HEARTBEAT) -> None:
        """Forever: mark this runner's running jobs as alive, so another instance leaves them alone."""
        while True:
            await self.repo.heartbeat(self.owner, self._clock.now().timestamp())
            await self._clock.sleep(interval)

    async def recover(self, *, stale_after: float | None = None) -> list[JobRecord]:
        """Mark jobs left ``running`` by a dead process as ``interrupted`` and report each.

        ``stale_after=None``: no other process can be alive (single instance), so every running job
        that is not this runner's is orphaned. With several instances, only jobs whose runner has not
        sent a heartbeat for ``stale_after`` seconds are.
        """
        reported = []
        for job in await self.repo.in_state(JobState.RUNNING):
            if job.id in self._tasks or job.owner == self.owner:
                continue
            now = self._clock.now().timestamp()
            if stale_after is not None and now - job.updated_at < stale_after:
                continue
            step = job.step
            if not await self.repo.cas(
                job.id,
                job.version,
                now=now,
                state=JobState.INTERRUPTED,
                result="bot restarted while the job ran",
            ):
                continue
            for open_step in job.steps:
                if open_step.started_at is not None and open_step.ended_at is None:
                    await self.repo.end_step(job.id, open_step.idx, "interrupted: outcome unknown", now)
            await self.repo.release_locks(job.id)
            states = []
            for name in job.targets:
                host = self._hosts.get(name) or Host(name=name)
                state = await self.state_of(host)
                states.append(
                    f"{name}: {state.describe() if state else 'state unknown (vCenter not answering)'}"
                )
            where = f"step {step.idx + 1} ({step.name} on {step.host})" if step else "its end"
            note = (
                f"The bot restarted while this job was at {where}. Host state now: {'; '.join(states)}. "
                "Nothing is re-run on its own: check the hosts, then run the command again (it asks for a "
                "new confirmation)."
            )
            job = await self._reload(job.id)
            await self._record(job, "interrupted", note)
            await self._progress(job, note, final=True)
            reported.append(job)
        return reported

    # --- running ------------------------------------------------------------------------------

    async def _reload(self, job_id: int) -> JobRecord:
        job = await self.repo.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} is gone")
        return job

    async def _run(self, job_id: int) -> JobRecord:
        job = await self._reload(job_id)
        stop = _Stop()
        try:
            width = max(1, int((job.plan.get("options") or {}).get("parallel") or 1))
            lanes = _lanes(job, width)
            slots = asyncio.Semaphore(width)
            running: list[asyncio.Task[None]] = []
            for lane in lanes:
                await slots.acquire()
                if stop.reason is not None:
                    slots.release()
                    break
                running.append(asyncio.create_task(self._lane(job_id, lane, stop, slots)))
            ended = await asyncio.gather(*running, return_exceptions=True)
            crashed = [e for e in ended if isinstance(e, BaseException)]
            if crashed:
                raise crashed[0]
            job = await self._reload(job_id)
            if stop.failed is not None:
                step, exc = stop.failed
                return await self._finish(job, JobState.FAILED, await self._failure_note(job, step, exc))
            if stop.reason is not None:
                return await self._finish(job, JobState.CANCELLED, stop.reason)
            if stop.stale:
                log.warning("job %d changed under its runner; stopping", job.id)
                return job
            return await self._finish(job, JobState.SUCCEEDED, "all steps done")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %d crashed", job_id)
            job = await self._reload(job_id)
            return await self._finish(job, JobState.FAILED, f"internal error: {type(exc).__name__}")

    async def _lane(self, job_id: int, lane: list[int], stop: _Stop, slots: asyncio.Semaphore) -> None:
        """One host's steps in order (all steps when not parallel); stops before a step once told."""
        try:
            for idx in lane:
                job = await self._reload(job_id)
                if stop.reason is None and job.cancel_requested:
                    stop.reason = f"cancelled by {job.cancelled_by} before step {idx + 1}"
                if stop.reason is not None or stop.stale:
                    return
                step = job.steps[idx]
                await self.repo.start_step(job.id, idx, self._clock.now().timestamp())
                await self._progress(await self._reload(job.id))
                try:
                    result = await self._execute(job, step)
                except (StepFailed, ActionError, RedfishError, EsxcliError) as exc:
                    await self.repo.end_step(job.id, idx, f"failed: {exc}", self._clock.now().timestamp())
                    await self._record(job, "step-failed", f"{step.name} {step.host}: {exc}")
                    if stop.failed is None:
                        stop.failed = (step, exc)
                        stop.reason = f"{step.name} on {step.host} failed"
                    await self._set_current(job.id)
                    return
                await self.repo.end_step(job.id, idx, result, self._clock.now().timestamp())
                await self._record(job, "step-ok", f"{step.name} {step.host}: {result}")
                if not await self._set_current(job.id):
                    stop.stale = True
                    return
        except Exception:
            stop.reason = stop.reason or "internal error"  # the other lanes stop before their next step
            raise
        finally:
            slots.release()

    async def _set_current(self, job_id: int) -> bool:
        """Point ``current_step`` at the first step not done well (fenced; lanes take turns)."""
        async with self._advance:
            job = await self._reload(job_id)
            first = next(
                (s.idx for s in job.steps if s.result is None or s.result.startswith("failed")),
                len(job.steps),
            )
            if first == job.current_step:
                return True
            return await self.repo.cas(
                job.id, job.version, now=self._clock.now().timestamp(), current_step=first
            )

    async def _failure_note(self, job: JobRecord, step: StepRecord, exc: Exception) -> str:
        touched = [h for h in job.targets if any(s.host == h and s.started_at is not None for s in job.steps)]
        if step.host not in job.targets:  # a cluster-level step (vLCM): every host of it may have moved
            touched = list(job.targets)
        states = []
        for name in touched:
            state = await self.state_of(self._hosts.get(name) or Host(name=name))
            seen = state.describe() if state else "state unknown"
            mm = ", left in maintenance mode" if state is not None and state.in_maintenance else ""
            states.append(f"{name} is now {seen}{mm}")
        rest = [h for h in job.targets if h not in touched]
        left = f" Not started: {', '.join(rest)}." if rest else ""
        return f"Stopped: {step.name} on {step.host} failed ({exc}). {'; '.join(states)}.{left}"

    async def _finish(self, job: JobRecord, state: JobState, note: str) -> JobRecord:
        await self.repo.cas(job.id, job.version, now=self._clock.now().timestamp(), state=state, result=note)
        await self.repo.release_locks(job.id)
        job = await self._reload(job.id)
        if self.on_outcome is not None:
            self.on_outcome(job.kind, state.value)
        await self._record(job, state.value, note)
        await self._progress(job, note, final=True)
        return job

    async def _progress(self, job: JobRecord, note: str | None = None, *, final: bool = False) -> None:
        card = render(job, note=note)
        key = job.progress_key or f"job-{job.id}-progress"
        edit = await self.repo.next_edit(job.id)
        await self._outbox.enqueue(
            job.conversation, card, thread=job.thread, key=f"{key}/{edit}", edit_of=key
        )
        if final:
            await self._outbox.enqueue(
                job.conversation,
                Reply(summary=card.summary, blocks=card.blocks[:2], ok=card.ok),
                thread=job.thread,
                key=f"{key}/final",
            )

    async def _record(self, job: JobRecord, outcome: str, detail: str) -> None:
        # the job's task was started inside the command, so this line carries the command's correlation id
        level = logging.WARNING if outcome in ("step-failed", "failed", "interrupted") else logging.INFO
        log.log(
            level, "job #%d %s %s: %s: %s", job.id, job.kind, ",".join(job.targets), outcome, detail[:300]
        )
        await self._audit.record(
            at=self._clock.now(), user_id=job.requested_by, conversation=job.conversation,
            text=f"job #{job.id} {job.kind} {' '.join(job.targets)}"[:500], command=f"job:{job.kind}",
            outcome=outcome, detail=detail[:1000], ref=f"job-{job.id}",
        )  # fmt: skip

    async def _execute(self, job: JobRecord, step: StepRecord) -> str:
        host = self._hosts.get(step.host or "") or Host(name=step.host or "")
        return await execute(self, job, step, host)

    # --- what the step table needs --------------------------------------------------------------

    def require_actions(self, host: Host) -> HostOps:
        actions = self.actions_for(host)
        if actions is None:
            raise StepFailed(f"no vCenter configured for {host.name}")
        return actions

    def redfish(self, host: Host) -> RedfishClient:
        bmc = self._bmcs.find(host_name=host.name, serial=host.serial) if self._bmcs else None
        if bmc is None:
            raise StepFailed(f"no BMC configured for {host.name}")
        return RedfishClient(bmc, poll_interval=self.settings.bmc_poll)

    def known_host(self, name: str) -> Host:
        return self._hosts.get(name) or Host(name=name)

    async def step_note(self, job: JobRecord, note: str) -> None:
        """Progress inside a long step (vLCM task percent): the card is edited with the note."""
        await self._progress(await self._reload(job.id), note)

    def remember(self, job: JobRecord, key: str, value: Any) -> None:
        self._scratch[(job.id, key)] = value

    def recall(self, job: JobRecord, key: str) -> Any:
        return self._scratch.get((job.id, key))
