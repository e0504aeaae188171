"""``outbox``: notifications that are retrying after a failure or failed for good, with their errors."""

from __future__ import annotations

from bot.clock import from_epoch
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Reply, Style, Table, Text


@command("outbox", help="Notifications still retrying or failed for good, with their errors", role=Role.ADMIN)
async def outbox(ctx: Context, count: int = 20) -> Reply:
    rows = await ctx.services.store.outbox.troubled(max(1, min(count, 200)))
    if not rows:
        return Reply.text("Every notification was delivered; none is retrying.", style=Style.SUCCESS)
    failed = sum(1 for r in rows if r.state == "failed")
    summary = f"{failed} failed for good, {len(rows) - failed} retrying (newest first)"
    table = Table(
        ("row", "where", "state", "tries", "queued (UTC)", "error"),
        tuple(
            (
                str(r.id),
                r.conversation,
                r.state,
                str(r.attempts),
                from_epoch(r.created_at).strftime("%Y-%m-%d %H:%M"),
                r.error[:160],
            )
            for r in rows
        ),
    )
    return Reply(
        summary=summary,
        blocks=(Text(summary, Style.WARNING if failed else Style.PLAIN), table),
        data={
            "rows": [{"id": r.id, "where": r.conversation, "state": r.state, "error": r.error} for r in rows]
        },
    )
