"""A job's card for chat: state, who asked and confirmed, and every step with its result and time.

The runner posts it under the command and edits it in place as steps run; ``job <id>`` shows it too.
Steps of a ``--parallel`` patch can be running at the same time: each row says so on its own.
"""

from __future__ import annotations

from typing import Any

from bot.messages import Fields, Reply, Style, Table, Text
from bot.model import JobState
from bot.store.job_records import JobRecord, StepRecord


def _elapsed(step: StepRecord) -> str:
    if step.started_at is None:
        return ""
    end = step.ended_at if step.ended_at is not None else step.started_at
    return f"{end - step.started_at:.0f}s"


def render(job: JobRecord, *, note: str | None = None) -> Reply:
    """A job's card: state, who, and every step with its result."""
    style = {
        JobState.SUCCEEDED: Style.SUCCESS,
        JobState.FAILED: Style.ERROR,
        JobState.INTERRUPTED: Style.WARNING,
        JobState.CANCELLED: Style.WARNING,
    }.get(job.state, Style.PLAIN)
    step = job.step
    where = (
        f" at step {job.current_step + 1}/{len(job.steps)} ({step.name} {step.host or ''})" if step else ""
    )
    head = f"Job #{job.id} {job.kind} {', '.join(job.targets)}: {job.state.value}{where}"
    rows = tuple(
        (
            str(s.idx + 1),
            s.name,
            s.host or "",
            s.result or ("running" if s.started_at else "pending"),
            _elapsed(s),
        )
        for s in job.steps
    )
    blocks: list[Any] = [Text(head, style)]
    if note:
        blocks.append(Text(note, style))
    blocks.append(
        Fields(
            (
                ("requested by", job.requested_by),
                ("confirmed by", job.confirmed_by or "-"),
                ("cancel requested", f"yes, by {job.cancelled_by}" if job.cancel_requested else "no"),
            )
        )
    )
    blocks.append(Table(("#", "step", "host", "result", "took"), rows))
    summary = f"{head}. {note}" if note else head
    return Reply(
        summary=summary,
        blocks=tuple(blocks),
        ok=job.state is not JobState.FAILED,
        data={"job": job.id, "state": job.state.value, "step": job.current_step},
        in_thread=True,
    )
