"""Pure renderer: ``Reply`` → plain text for the console (and for any platform's fallback)."""

from __future__ import annotations

from datetime import UTC
from typing import assert_never

from bot.messages import Actions, Block, Code, Confirm, Fields, Reply, Style, Table, Text

_MARK = {Style.PLAIN: "", Style.SUCCESS: "✔ ", Style.WARNING: "⚠ ", Style.ERROR: "✖ "}


def _table(block: Table) -> list[str]:
    widths = [len(c) for c in block.columns]
    for row in block.rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(c.ljust(w) for c, w in zip(block.columns, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in block.rows]
    return out


def render_block(block: Block) -> list[str]:
    match block:
        case Text(text=text, style=style):
            return [_MARK[style] + text]
        case Fields(items=items, title=title):
            width = max((len(k) for k, _ in items), default=0)
            lines = [title] if title else []
            lines += [f"  {k.ljust(width)}  {v}" for k, v in items]
            return lines
        case Table(title=title):
            return ([title] if title else []) + _table(block)
        case Code(text=text):
            return ["    " + line for line in text.splitlines()] or [""]
        case Confirm(prompt=prompt, token=token, expires_at=expires_at):
            expires = expires_at.astimezone(UTC).strftime("%H:%M UTC")
            return [
                f"? {prompt}",
                f"  Type `yes {token}` to go ahead, `no {token}` to drop it (expires {expires}).",
            ]
        case Actions(buttons=buttons):
            return ["Actions: " + " · ".join(f"`{b.command}` ({b.label})" for b in buttons)]
        case _:
            assert_never(block)


def render_text(reply: Reply) -> str:
    if not reply.blocks:
        return reply.summary
    chunks = ["\n".join(render_block(b)) for b in reply.blocks]
    return "\n\n".join(chunks)
