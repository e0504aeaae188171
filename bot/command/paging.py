"""Long answers in pages: every row of a long table can be reached with ``more``, none is cut away.

A table longer than ``PAGE_ROWS`` shows its first page; the rest is stored per conversation (the kv
table) and ``more`` shows the next page, until the last. A new long answer in the same conversation
replaces what ``more`` would continue. ``say --json`` is untouched: ``data`` always holds everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.messages import Actions, Block, Button, Conversation, Reply, Style, Table, Text
from bot.store.kv import KeyValueRepo

PAGE_ROWS = 40
PAGE_CHARS = 6000  # half of Slack's text budget for one message, so the rest of the reply fits too


def page_size(table: Table) -> int:
    """Rows per page: at most ``PAGE_ROWS``, fewer when lines are wide (tables pad to the widest cell)."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(cell))
    line = sum(widths) + 2 * len(widths)
    return max(5, min(PAGE_ROWS, PAGE_CHARS // max(1, line)))


def _key(conversation: Conversation) -> str:
    # per room, not per thread: a Next button on a page posted in a thread continues the same answer
    return f"more:{conversation.key}"


def _range(title: str | None, start: int, shown: int, total: int) -> str:
    where = f"rows {start + 1}–{start + shown} of {total}"
    return f"{title} ({where})" if title else where.capitalize()


async def paged(
    reply: Reply, kv: KeyValueRepo, conversation: Conversation, form: Callable[[str], str]
) -> Reply:
    """``reply`` with each long table cut to its first page; the rest stored for ``more``."""
    rest: list[dict[str, Any]] = []
    blocks: list[Block] = []
    for block in reply.blocks:
        size = page_size(block) if isinstance(block, Table) else 0
        if isinstance(block, Table) and len(block.rows) > size:
            title = _range(block.title, 0, size, len(block.rows))
            blocks.append(replace(block, rows=block.rows[:size], title=title))
            rows = [list(r) for r in block.rows]
            rest.append({"title": block.title, "columns": list(block.columns), "rows": rows, "next": size})
        else:
            blocks.append(block)
    if not rest:
        return reply
    await kv.set(_key(conversation), json.dumps(rest))
    return replace(reply, blocks=(*blocks, *_footer(rest, form)))


def _table(part: dict[str, Any]) -> Table:
    return Table(tuple(part["columns"]), tuple(tuple(r) for r in part["rows"]), title=part["title"])


def _footer(parts: list[dict[str, Any]], form: Callable[[str], str]) -> tuple[Block, ...]:
    left = sum(len(p["rows"]) - p["next"] for p in parts)
    following = next(p for p in parts if p["next"] < len(p["rows"]))
    step = min(len(following["rows"]) - following["next"], page_size(_table(following)))
    text = f"{left} more row(s): say `{form('more')}` (or use the button) for the next {step}."
    return Text(text), Actions((Button(f"Next {step} rows", "more"),))


async def next_page(kv: KeyValueRepo, conversation: Conversation, form: Callable[[str], str]) -> Reply:
    """The next page of the last long answer in this conversation."""
    raw = await kv.get(_key(conversation))
    parts: list[dict[str, Any]] = json.loads(raw) if raw else []
    parts = [p for p in parts if p["next"] < len(p["rows"])]
    if not parts:
        text = f"Nothing more to show: `{form('more')}` continues the last long answer here."
        return Reply.text(text, style=Style.WARNING)
    part = parts[0]
    start, rows = part["next"], part["rows"]
    size = page_size(_table(part))
    page = tuple(tuple(r) for r in rows[start : start + size])
    part["next"] = start + len(page)
    title = _range(part["title"], start, len(page), len(rows))
    blocks: list[Block] = [Table(tuple(part["columns"]), page, title=title)]
    if any(p["next"] < len(p["rows"]) for p in parts):
        await kv.set(_key(conversation), json.dumps(parts))
        blocks += _footer(parts, form)
    else:
        await kv.delete(_key(conversation))
        blocks.append(Text("That was the last row.", Style.SUCCESS))
    return Reply(summary=title, blocks=tuple(blocks), data={"rows": [list(r) for r in page]})
