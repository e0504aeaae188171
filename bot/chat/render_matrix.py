"""Render a ``Reply`` as Matrix message content: a plain ``body`` and ``org.matrix.custom.html``.

Pure functions, no I/O. Every piece of text that came from a handler is HTML-escaped; the only
markup in ``formatted_body`` is the markup written here, and back-ticked spans, which become
``<code>``. Every message carries ``m.mentions`` naming exactly the users the reply means to notify
(``Reply.notify``; nobody, and never the room, otherwise), so text a user typed (``@room``, a name)
cannot make the bot ping anyone. Matrix has no buttons: a ``Confirm`` tells the user to react with ✅ or
to type ``!esx yes <token>``, and ``Actions`` list the commands to type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from html import escape
from typing import Any, assert_never

from bot.messages import Actions, Block, Code, Confirm, Fields, Reply, Style, Table, Text

CONFIRM_REACTION = "✅"
HTML_FORMAT = "org.matrix.custom.html"

_STYLE_MARK = {Style.PLAIN: "", Style.SUCCESS: "✅ ", Style.WARNING: "⚠️ ", Style.ERROR: "❌ "}
_STYLE_COLOUR = {Style.SUCCESS: "#2e7d32", Style.WARNING: "#b26a00", Style.ERROR: "#c62828"}


@dataclass(frozen=True, slots=True)
class MatrixMessage:
    """One rendered message: what clients without HTML show, and the HTML the others show."""

    body: str
    formatted_body: str
    mentions: tuple[str, ...] = ()  # Matrix user ids to notify

    def content(self, msgtype: str = "m.notice") -> dict[str, Any]:
        return {
            "msgtype": msgtype,
            "body": self.body,
            "format": HTML_FORMAT,
            "formatted_body": self.formatted_body,
            "m.mentions": {"user_ids": list(self.mentions)} if self.mentions else {},
        }


def render(reply: Reply, *, prefix: str = "!esx") -> MatrixMessage:
    """The whole reply; a reply without blocks shows its summary."""
    mentions = tuple(user.removeprefix("matrix:") for user in reply.notify if user.startswith("matrix:@"))
    if not reply.blocks:
        return MatrixMessage(reply.summary, _html_text(reply.summary), mentions)
    parts = [_block(block, prefix) for block in reply.blocks]
    return MatrixMessage(
        "\n\n".join(plain for plain, _ in parts),
        "".join(html for _, html in parts),
        mentions,
    )


def _block(block: Block, prefix: str) -> tuple[str, str]:
    match block:
        case Text():
            return _text(block)
        case Fields():
            return _fields(block)
        case Table():
            return _table(block)
        case Code():
            return block.text, f"<pre><code>{escape(block.text)}</code></pre>"
        case Confirm():
            return _confirm(block, prefix)
        case Actions():
            return _actions(block, prefix)
        case _:
            assert_never(block)


_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def _html_text(text: str) -> str:
    """Escaped HTML; back-ticked spans become ``<code>`` (the plain body keeps the back-ticks)."""
    return _INLINE_CODE.sub(r"<code>\1</code>", escape(text)).replace("\n", "<br/>")


def _text(block: Text) -> tuple[str, str]:
    mark = _STYLE_MARK[block.style]
    html = _html_text(block.text)
    if block.style in _STYLE_COLOUR:
        html = f'<font data-mx-color="{_STYLE_COLOUR[block.style]}">{html}</font>'
    return f"{mark}{block.text}", f"<p>{escape(mark)}{html}</p>"


def _title(title: str | None) -> tuple[list[str], str]:
    if title is None:
        return [], ""
    return [title], f"<p><strong>{escape(title)}</strong></p>"


def _fields(block: Fields) -> tuple[str, str]:
    plain, html = _title(block.title)
    plain += [f"{label}: {value}" for label, value in block.items]
    items = "".join(
        f"<li><strong>{escape(label)}</strong>: {_html_text(value)}</li>" for label, value in block.items
    )
    return "\n".join(plain), f"{html}<ul>{items}</ul>"


def _table(block: Table) -> tuple[str, str]:
    plain, html = _title(block.title)
    width = len(block.columns)
    rows = [tuple(row[:width]) + ("",) * (width - len(row)) for row in block.rows]
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(block.columns)]
    for cells in (block.columns, *rows):
        plain.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip())
    head = "".join(f"<th>{escape(column)}</th>" for column in block.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return "\n".join(plain), f"{html}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _confirm(block: Confirm, prefix: str) -> tuple[str, str]:
    expires = block.expires_at.astimezone(UTC).strftime("%H:%M UTC")
    answer, drop = f"{prefix} yes {block.token}", f"{prefix} no {block.token}"
    mark = "⚠️ " if block.danger else ""
    how = f"React {CONFIRM_REACTION} or type `{answer}`; `{drop}` drops it (expires {expires})."
    plain = f"{mark}{block.prompt}\n{how}"
    html = f"<p>{escape(mark)}<strong>{_html_text(block.prompt)}</strong></p><p>{_html_text(how)}</p>"
    return plain, html


def _actions(block: Actions, prefix: str) -> tuple[str, str]:
    commands = [(button.label, f"{prefix} {button.command}") for button in block.buttons]
    plain = "\n".join(f"{label}: type `{command}`" for label, command in commands)
    items = "".join(
        f"<li>{escape(label)}: <code>{escape(command)}</code></li>" for label, command in commands
    )
    return plain, f"<ul>{items}</ul>"
