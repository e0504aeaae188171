"""Pure renderer: ``Reply`` ⇄ JSON-able dicts, for ``esxbot say --json`` and the outbox's rows.

The shape is stable (documented in README): ``{"ok", "summary", "blocks": [{"type": …}], "data"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, assert_never

from bot.messages import Actions, Block, Button, Code, Confirm, Fields, Reply, Style, Table, Text


def block_to_dict(block: Block) -> dict[str, Any]:
    match block:
        case Text(text=text, style=style):
            return {"type": "text", "text": text, "style": style.value}
        case Fields(items=items, title=title):
            return {"type": "fields", "title": title, "fields": [{"name": k, "value": v} for k, v in items]}
        case Table(columns=columns, rows=rows, title=title):
            return {
                "type": "table",
                "title": title,
                "columns": list(columns),
                "rows": [list(r) for r in rows],
            }
        case Code(text=text):
            return {"type": "code", "text": text}
        case Confirm(token=token, prompt=prompt, expires_at=expires_at, danger=danger):
            return {
                "type": "confirm",
                "token": token,
                "prompt": prompt,
                "expires_at": expires_at.isoformat(),
                "danger": danger,
            }
        case Actions(buttons=buttons):
            return {
                "type": "actions",
                "buttons": [{"label": b.label, "command": b.command, "danger": b.danger} for b in buttons],
            }
        case _:
            assert_never(block)


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    out = {
        "ok": reply.ok,
        "summary": reply.summary,
        "blocks": [block_to_dict(b) for b in reply.blocks],
        "data": dict(reply.data),
        "in_thread": reply.in_thread,
    }
    if reply.notify:
        out["notify"] = list(reply.notify)
    return out


def block_from_dict(d: Mapping[str, Any]) -> Block:
    kind = d.get("type")
    if kind == "text":
        return Text(str(d["text"]), Style(d.get("style", "plain")))
    if kind == "fields":
        return Fields(tuple((str(f["name"]), str(f["value"])) for f in d["fields"]), d.get("title"))
    if kind == "table":
        return Table(tuple(d["columns"]), tuple(tuple(str(c) for c in r) for r in d["rows"]), d.get("title"))
    if kind == "code":
        return Code(str(d["text"]))
    if kind == "confirm":
        return Confirm(
            token=str(d["token"]),
            prompt=str(d["prompt"]),
            expires_at=datetime.fromisoformat(d["expires_at"]),
            danger=bool(d.get("danger", True)),
        )
    if kind == "actions":
        return Actions(tuple(Button(b["label"], b["command"], bool(b.get("danger"))) for b in d["buttons"]))
    raise ValueError(f"unknown block type {kind!r}")


def reply_from_dict(d: Mapping[str, Any]) -> Reply:
    return Reply(
        summary=str(d["summary"]),
        blocks=tuple(block_from_dict(b) for b in d.get("blocks", [])),
        ok=bool(d.get("ok", True)),
        data=dict(d.get("data", {})),
        in_thread=bool(d.get("in_thread", False)),
        notify=tuple(str(u) for u in d.get("notify", ())),
    )
