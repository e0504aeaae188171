"""``yes <token>`` / ``no <token>``: answer a pending confirmation (buttons and reactions map here)."""

from __future__ import annotations

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Reply


@command("yes", help="Confirm a pending action by its token", role=Role.VIEWER, aliases=("confirm",))
async def yes(ctx: Context, token: str) -> Reply:
    return await ctx.gate.accept(token)


@command("no", help="Drop a pending action by its token", role=Role.VIEWER, aliases=("cancel-confirm",))
async def no(ctx: Context, token: str) -> Reply:
    return await ctx.gate.decline(token)
