"""``demo release|break|fix|reset``: events on demand for the simulated fleet (demo mode only).

Registered by ``bot.runtime.app`` only when it built the simulated fleet; the work is done by
``bot.demo.events`` through ``ctx.services.demo``.
"""

from __future__ import annotations

from typing import Literal

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.selectors import HostArg
from bot.command.spec import CommandError, command
from bot.messages import Reply


@command(
    "demo",
    help="Demo mode only: `demo release <name>` (a release arrives), `demo break <host>` (it loses its "
    "bootbank), `demo fix <host>`, `demo reset` (the fleet as it started)",
    role=Role.OPERATOR,
)
async def demo(ctx: Context, action: Literal["release", "break", "fix", "reset"], *words: str) -> Reply:
    controls = ctx.services.demo
    if controls is None:
        raise CommandError("`demo` works in demo mode only, with the simulated fleet.")
    if action == "reset":
        if words:
            raise CommandError("`demo reset` takes no arguments.")
        return await controls.reset()
    if action == "release":
        if not words:
            raise CommandError("Say which release: `demo release 7.0 U2d`.")
        return await controls.release(" ".join(words))
    if len(words) != 1:
        raise CommandError(f"Say which host: `demo {action} esx01`.")
    host = await HostArg().convert(ctx, words[0], "host")
    return await (controls.break_host(host) if action == "break" else controls.fix_host(host))


DEMO = (demo,)
