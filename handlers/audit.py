"""``audit [count]``: the most recent commands, run or refused (admins only)."""

from __future__ import annotations

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Reply, Table


@command("audit", help="Recent commands run or refused, newest first", role=Role.ADMIN)
async def audit(ctx: Context, count: int = 20, *, user: str | None = None) -> Reply:
    count = max(1, min(count, 200))
    entries = await ctx.services.store.audit.recent(count, user_id=user)
    rows = tuple(
        (
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.user_id,
            e.conversation,
            e.text[:80],
            e.outcome,
            (e.detail or "")[:80],
        )
        for e in entries
    )
    return Reply(
        summary=f"{len(entries)} audit entries",
        blocks=(
            Table(("time (UTC)", "user", "where", "command", "outcome", "detail"), rows, title="Audit trail"),
        ),
        data={
            "entries": [
                {
                    "at": e.at.isoformat(),
                    "user": e.user_id,
                    "where": e.conversation,
                    "text": e.text,
                    "command": e.command,
                    "outcome": e.outcome,
                    "detail": e.detail,
                    "ref": e.ref,
                }
                for e in entries
            ]
        },
    )
