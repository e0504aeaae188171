"""``jobs``, ``job <id>``, ``cancel <job>``, and ``host_action``, the one way a host-changing command is
built: one planner (its signature is the grammar) makes both the confirmation preview and the plan that
runs after ``yes``. The preview's plan facts are stored with the confirmation; after ``yes`` the planner
runs again from fresh vCenter state with ``ctx.approved`` set (patch pins the previewed build), and the
dispatcher refuses when the pre-checks now fail or the facts differ from what was shown.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.actions.job_card import render
from bot.actions.prechecks import CHECK_NAMES, Check, failures
from bot.actions.runner import JobRequest, JobRunner
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.grammar import BadArgument
from bot.command.spec import CommandError, CommandSpec, command
from bot.messages import Block, Reply, Style, Table, Text
from bot.model import Host
from bot.store.job_records import HostBusy, StepSpec


@dataclass(frozen=True, slots=True)
class Plan:
    kind: str
    hosts: tuple[Host, ...]
    checks: tuple[Check, ...]
    steps: tuple[StepSpec, ...]
    options: dict[str, Any]
    notes: tuple[str, ...] = ()

    def facts(self) -> dict[str, Any]:
        """What a confirmation binds: targets and the host facts the pre-checks used, steps, options."""
        return {
            "kind": self.kind,
            "hosts": {
                h.name: {
                    "build": h.build,
                    "cluster": h.cluster,
                    "connection": h.connection_state.value,
                    "maintenance": h.in_maintenance,
                    "power": h.power_state.value,
                }
                for h in self.hosts
            },
            "steps": [f"{s.name} {s.host or ''}".strip() for s in self.steps],
            "options": self.options,
        }

    def as_json(self, overrides: frozenset[str]) -> dict[str, Any]:
        return {
            "options": self.options,
            "overrides": sorted(overrides),
            "checks": [
                {"host": c.host, "name": c.name, "ok": c.ok, "blocking": c.blocking, "detail": c.detail}
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


def runner_of(ctx: Context) -> JobRunner:
    runner = ctx.services.jobs
    if runner is None:
        raise CommandError("Host actions are not configured: this bot has no vCenter connection.")
    return runner


def parse_overrides(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    names = frozenset(w.strip().lower() for w in raw.split(",") if w.strip())
    unknown = sorted(names - {*CHECK_NAMES, "all"} | (names & {"lock"}))
    if unknown:
        allowed = ", ".join(n for n in (*CHECK_NAMES, "all") if n != "lock")
        raise BadArgument(f"cannot override {', '.join(unknown)}; known checks: {allowed}", param="override")
    return names


def steps_count(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def nothing_to_do(plan: Plan) -> str | None:
    """Why a plan without steps is refused, or None when it has steps."""
    if plan.steps:
        return None
    why = "; ".join(f"{c.host} {c.name}: {c.detail}" for c in plan.checks if not c.ok) or "no step applies"
    targets = ", ".join(h.name for h in plan.hosts)
    return f"Nothing to do: {plan.kind} {targets} has no step that can run ({why})."


def plan_reply(ctx: Context, plan: Plan, overrides: frozenset[str], *, dry_run: bool = False) -> Reply:
    blocking = failures(plan.checks, overrides)
    targets = ", ".join(h.name for h in plan.hosts)
    head = f"Plan: {plan.kind} {targets} ({steps_count(len(plan.steps))})"
    blocks: list[Block] = [Text(head)]
    checks = tuple(
        (c.host, c.name, c.mark + (" (overridden)" if not c.ok and c.name in overrides else ""), c.detail)
        for c in plan.checks
    )
    blocks.append(Table(("host", "check", "result", "detail"), checks, title="Pre-checks"))
    steps = tuple(
        (str(i + 1), s.name, s.host or "", "yes" if s.destructive else "") for i, s in enumerate(plan.steps)
    )
    blocks.append(Table(("#", "step", "host", "destructive"), steps, title="Steps"))
    blocks += [Text(note) for note in plan.notes]
    if blocking:
        reasons = "; ".join(f"{c.host} {c.name}: {c.detail}" for c in blocking)
        blocks.append(Text(f"Pre-checks failed: {reasons}", Style.ERROR))
    if dry_run:
        blocks.append(Text("Dry run: nothing was changed and nothing is pending.", Style.WARNING))
        data = {"dry_run": True, "plan": plan.facts()}
        return Reply(summary=f"{head}. Dry run.", blocks=tuple(blocks), ok=False, data=data)
    locks = [c for c in blocking if c.name == "lock"]
    if locks:
        text = (
            f"Refused: {'; '.join(f'{c.host}: {c.detail}' for c in locks)}. See `{ctx.command.form('jobs')}`."
        )
        return Reply(summary=text, blocks=(*blocks, Text(text, Style.ERROR)), ok=False)
    empty = nothing_to_do(plan)
    if empty is not None:
        return Reply(summary=empty, blocks=(*blocks, Text(empty, Style.ERROR)), ok=False)
    if blocking:
        names = ",".join(sorted({c.name for c in blocking}))
        hint = f"Fix them, or add `--override {names}` to the command (audited)."
        return Reply(summary=f"{head}. Pre-checks failed. {hint}", blocks=(*blocks, Text(hint)), ok=False)
    return Reply(summary=head, blocks=tuple(blocks), data={"plan": plan.facts()})


@dataclass(frozen=True, slots=True)
class Planned:
    """A planner's answer: the plan, the pre-checks the caller overrides, and whether it is a dry run."""

    plan: Plan
    overrides: frozenset[str] = frozenset()
    dry_run: bool = False


Planner = Callable[..., Awaitable[Planned]]


def host_action(name: str, *, help: str) -> Callable[[Planner], CommandSpec]:
    """A confirmed operator command from one planner: its preview shows the plan, ``yes`` starts it."""

    def wrap(planner: Planner) -> CommandSpec:
        async def preview(ctx: Context, *args: Any, **kwargs: Any) -> Reply:
            planned = await planner(ctx, *args, **kwargs)
            return plan_reply(ctx, planned.plan, planned.overrides, dry_run=planned.dry_run)

        @functools.wraps(planner)  # the planner's signature is the grammar
        async def run(ctx: Context, *args: Any, **kwargs: Any) -> Reply:
            planned = await planner(ctx, *args, **kwargs)
            if planned.dry_run:
                raise CommandError("A dry run has nothing to confirm.")
            return await start(ctx, planned.plan, planned.overrides)

        return command(name, help=help, role=Role.OPERATOR, confirm=True, preview=preview)(run)

    return wrap


async def start(ctx: Context, plan: Plan, overrides: frozenset[str]) -> Reply:
    """The confirmed run: refuse on failed pre-checks, audit overrides, create and start the job."""
    runner = runner_of(ctx)
    blocking = failures(plan.checks, overrides)
    if blocking:
        reasons = "; ".join(f"{c.host} {c.name}: {c.detail}" for c in blocking)
        raise CommandError(f"Pre-checks failed, nothing was done: {reasons}")
    empty = nothing_to_do(plan)
    if empty is not None:
        raise CommandError(empty)
    overridden = [c for c in plan.checks if not c.ok and c.blocking and c.name != "lock"]
    if overridden:
        await ctx.services.store.audit.record(
            at=ctx.services.clock.now(),
            user_id=ctx.user.id,
            conversation=ctx.command.conversation.key,
            text=ctx.command.text[:500],
            command=plan.kind,
            outcome="override",
            detail="; ".join(f"{c.host} {c.name}: {c.detail}" for c in overridden)[:1000],
        )
    command_ = ctx.command
    request = JobRequest(
        kind=plan.kind,
        requested_by=ctx.user.id,
        confirmed_by=ctx.confirmed_by.id if ctx.confirmed_by else None,
        conversation=command_.conversation.key,
        thread=command_.conversation.thread or command_.message_id,
        hosts=plan.hosts,
        plan=plan.as_json(overrides),
        steps=plan.steps,
    )
    try:
        job = await runner.submit(request)
    except HostBusy as exc:
        see = ctx.command.form(f"job {exc.job_id}")
        raise CommandError(f"Refused: {exc.host} is busy with job #{exc.job_id}; see `{see}`.") from None
    text = f"Job #{job.id} started: {plan.kind} {', '.join(job.targets)}. Progress follows in the thread."
    return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data={"job": job.id}, in_thread=True)


async def busy(ctx: Context, hosts: Sequence[Host]) -> dict[str, int]:
    runner = runner_of(ctx)
    found: dict[str, int] = {}
    for host in hosts:
        holder = await runner.repo.lock_holder(host.name)
        if holder is not None:
            found[host.name] = holder
    return found


@command("jobs", help="Recent host-action jobs and their state", role=Role.VIEWER)
async def jobs(ctx: Context, *, all: bool = False) -> Reply:
    runner = runner_of(ctx)
    records = await runner.repo.listing(active_only=False, limit=50 if all else 15)
    if not records:
        return Reply.text("No jobs yet.")
    rows = tuple(
        (
            f"#{j.id}",
            j.kind,
            ", ".join(j.targets)[:60],
            j.state.value,
            f"{j.current_step + 1 if j.step else len(j.steps)}/{len(j.steps)}",
            j.requested_by,
        )
        for j in records
    )
    table = Table(("job", "kind", "hosts", "state", "step", "by"), rows)
    return Reply(summary=f"{len(records)} job(s)", blocks=(table,), data={"jobs": [j.id for j in records]})


@command("job", help="One job's steps, results and state", role=Role.VIEWER)
async def job(ctx: Context, job_id: str) -> Reply:
    number = _job_number(job_id)
    record = await runner_of(ctx).repo.get(number)
    if record is None:
        raise CommandError(f"No job #{number}.")
    return render(record, note=record.result)


@command(
    "cancel",
    help="Stop a job before its next step (a running vCenter task is not killed)",
    role=Role.OPERATOR,
)
async def cancel(ctx: Context, job_id: str) -> Reply:
    number = _job_number(job_id)
    record = await runner_of(ctx).cancel(number, by=ctx.user.id)
    if record is None:
        raise CommandError(f"Job #{number} is not planned or running; nothing to cancel.")
    text = f"Job #{number}: cancel requested; it stops before its next step."
    return Reply(summary=text, blocks=(Text(text, Style.WARNING),), data={"job": number})


def _job_number(raw: str) -> int:
    digits = raw.removeprefix("#")
    if not digits.isdigit() or len(digits) > 12:
        raise BadArgument("must be a job number like 12 or #12.", param="job_id")
    return int(digits)
