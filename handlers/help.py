"""``help [command]``: the commands the caller may run, or one command's usage."""

from __future__ import annotations

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.grammar import closest
from bot.command.spec import command
from bot.messages import Code, Reply, Style, Table, Text


@command("help", help="List the commands you can run, or show how to use one", role=Role.VIEWER)
async def help_(ctx: Context, name: str | None = None) -> Reply:
    specs = {id(s): s for s in ctx.services.commands.values()}.values()
    visible = sorted((s for s in specs if s.role <= ctx.role), key=lambda s: s.name)
    if name:
        spec = ctx.services.commands.get(name.lower())
        if spec is None or spec.role > ctx.role:
            guess = closest(name, [s.name for s in visible])
            hint = f" Did you mean `{ctx.command.form(f'help {guess}')}`?" if guess else ""
            return Reply.error(f"No command `{name[:40]}` that you can run.{hint}")
        lines = [spec.help, f"Role: {spec.role.label}" + (", asks for confirmation" if spec.confirm else "")]
        return Reply(
            summary=f"{spec.usage()} — {spec.help}",
            blocks=(Code(ctx.command.form(spec.usage())), Text("\n".join(lines))),
            data={"command": spec.name, "usage": spec.usage(), "role": spec.role.label},
        )
    rows = tuple((s.brief(), s.help + (" (confirm)" if s.confirm else "")) for s in visible)
    hidden = len(list(specs)) - len(visible)
    blocks: list[Text | Table] = [
        Table(("command", "what it does"), rows, title=f"Commands for you ({ctx.role.label})")
    ]
    if hidden:
        blocks.append(Text(f"{hidden} more need a higher role.", Style.PLAIN))
    return Reply(
        summary="Commands: " + ", ".join(s.name for s in visible),
        blocks=tuple(blocks),
        data={"commands": [s.name for s in visible]},
    )
