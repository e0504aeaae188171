"""``sources``: each configured release source with its kind, URL, last success, last error, next poll."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Reply, Style, Table


def _when(moment: datetime | None, now: datetime) -> str:
    """``2021-08-24 10:00 UTC (3h ago)`` / ``… (in 12m)`` / ``never``."""
    if moment is None:
        return "never"
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 90:
        size = f"{span:.0f}s"
    elif span < 5400:
        size = f"{span / 60:.0f}m"
    elif span < 172800:
        size = f"{span / 3600:.0f}h"
    else:
        size = f"{span / 86400:.0f}d"
    relative = f"in {size}" if seconds > 0 else f"{size} ago"
    return f"{moment.strftime('%Y-%m-%d %H:%M')} UTC ({relative})"


@command(
    "sources",
    help="Release sources: kind, URL, last success, last error and next poll",
    role=Role.VIEWER,
)
async def sources(ctx: Context) -> Reply:
    poller = ctx.services.sources
    if poller is None or not poller.sources:
        return Reply.text(
            "No release sources are configured (add a `sources:` list to the settings).", style=Style.WARNING
        )
    now = ctx.services.clock.now()
    rows: list[tuple[str, ...]] = []
    data: list[dict[str, Any]] = []
    failing = 0
    for source, state in await poller.states():
        if state.last_error is not None:
            failing += 1
            error = f"{state.last_error} ({_when(state.last_error_at, now)}, {state.failures} in a row)"
        else:
            error = "-"
        next_poll = _when(state.next_poll, now) if source.enabled else "disabled"
        if source.enabled and state.next_poll is None:
            next_poll = "at start"
        rows.append(
            (source.name, source.kind.value, source.url, _when(state.last_success, now), error, next_poll)
        )
        data.append(
            {
                "name": source.name,
                "kind": source.kind.value,
                "url": source.url,
                "enabled": source.enabled,
                "interval": source.interval,
                "last_success": state.last_success.isoformat() if state.last_success else None,
                "last_error": state.last_error,
                "last_error_at": state.last_error_at.isoformat() if state.last_error_at else None,
                "failures": state.failures,
                "next_poll": state.next_poll.isoformat() if state.next_poll else None,
            }
        )
    summary = f"{len(rows)} release source{'s' if len(rows) != 1 else ''}" + (
        f", {failing} failing" if failing else ", all fine"
    )
    table = Table(
        ("source", "kind", "URL", "last success", "last error", "next poll"), tuple(rows), title=summary
    )
    return Reply(summary=summary, blocks=(table,), data={"sources": data}, ok=True)
