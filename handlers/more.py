"""``more``: the next page of the last long answer in this conversation."""

from __future__ import annotations

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.paging import next_page
from bot.command.spec import command
from bot.messages import Reply


@command("more", help="The next rows of the last long answer here", role=Role.VIEWER, aliases=("next",))
async def more(ctx: Context) -> Reply:
    return await next_page(ctx.services.store.kv, ctx.command.conversation, ctx.command.form)
