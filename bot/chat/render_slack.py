"""Render a ``Reply`` as a Slack message: Block Kit ``blocks`` plus the plain ``text`` fallback.

Pure functions, no I/O, never fail. Slack's limits (docs.slack.dev "Blocks", "Block elements",
"Confirmation dialog object") are met by splitting first and truncating last: long text becomes several
sections of at most 3000 characters, fields go ten to a section, buttons 25 to an actions block, and a
message keeps at most 50 blocks and about 12,000 characters of block text (Slack answers
``msg_blocks_too_long`` near 13,000, slackapi/bolt-js#2509). When something must go, plain content is
dropped before buttons and a note says so. Handler text is escaped (``& < >``) so it cannot ping
``<!channel>`` or forge links. Mobile notifications and screen readers read only ``text``: the summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, assert_never

from bot.messages import Actions, Block, Button, Code, Confirm, Fields, Reply, Style, Table, Text

MAX_BLOCKS = 50
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BLOCK_TEXT_BUDGET = 12_000
FALLBACK_TEXT = 3000
CONFIRM_ACTION = "esx_confirm"
CANCEL_ACTION = "esx_cancel"
BUTTON_ACTION = "esx_button"
ACTION_PREFIX = "esx_"

_STYLE_MARK = {Style.PLAIN: "", Style.SUCCESS: ":white_check_mark: ", Style.WARNING: ":warning: ",
               Style.ERROR: ":x: "}  # fmt: skip

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """The arguments of ``chat.postMessage`` / ``chat.update`` that carry content."""

    text: str
    blocks: tuple[Json, ...]

    def arguments(self) -> Json:
        return {"text": self.text, "blocks": list(self.blocks)}


def escape(text: str) -> str:
    """Slack's three control characters; everything else is literal in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unfence(text: str) -> str:
    """Text that cannot close the ``` block it is shown in (a zero-width space breaks the run)."""
    return text.replace("```", "`\u200b``")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(reply: Reply, *, command: str = "/esx", preface: str | None = None) -> SlackMessage:
    """The whole reply as one message; a reply without blocks shows its summary. ``preface`` is
    adapter-written mrkdwn (not escaped) shown as a context line on top, e.g. who ran a slash command."""
    blocks: list[tuple[Json, bool]] = [(_context(preface), True)] if preface else []
    for block in reply.blocks or (Text(reply.summary),):
        blocks.extend(_block(block, command))
    if not any(block["type"] != "context" for block, _ in blocks):
        blocks.append((_section(escape(reply.summary) or "(empty reply)"), False))
    return SlackMessage(text=_fallback(reply), blocks=tuple(_fit(blocks)))


def resolve_actions(blocks: Sequence[Mapping[str, Any]], block_id: str | None, note: str) -> tuple[Json, ...]:
    """The message's blocks with the clicked actions block replaced by a context note (no second click)."""
    note_block: Json = {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(note, SECTION_TEXT)}]}
    return tuple(
        note_block if block.get("type") == "actions" and block.get("block_id") == block_id else dict(block)
        for block in blocks
    )


def _fallback(reply: Reply) -> str:
    text = reply.summary.strip()
    if not text:
        text = next((b.text for b in reply.blocks if isinstance(b, Text) and b.text.strip()), "esxbot")
    return clip(escape(text), FALLBACK_TEXT)


def _block(block: Block, command: str) -> Iterator[tuple[Json, bool]]:
    """Slack blocks for one neutral block; the flag marks blocks that must survive truncation."""
    match block:
        case Text():
            for piece in _pieces(block.text, SECTION_TEXT - len(_STYLE_MARK[block.style])):
                yield _section(_STYLE_MARK[block.style] + piece), False
        case Fields():
            yield from _fields(block)
        case Table():
            yield from _table(block)
        case Code():
            yield from _code(block.text)
        case Confirm():
            yield from _confirm(block, command)
        case Actions():
            yield from _actions(block.buttons)
        case _:
            assert_never(block)


def _section(mrkdwn: str) -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _context(mrkdwn: str) -> Json:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT)}]}


def _plain(text: str, limit: int) -> Json:
    return {"type": "plain_text", "text": clip(text.strip() or "-", limit), "emoji": True}


def _pieces(raw: str, limit: int) -> list[str]:
    """Escaped chunks of at most ``limit`` characters, cut at line ends where possible."""
    chunks: list[str] = []
    current = ""
    for line in raw.splitlines():
        escaped = escape(line)
        candidate = f"{current}\n{escaped}" if current else escaped
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = ""
        while len(escaped) > limit:
            cut = limit
            amp = escaped.rfind("&", cut - 4, cut)  # never cut inside &amp; &lt; &gt;
            if amp != -1 and ";" not in escaped[amp:cut]:
                cut = amp
            chunks.append(escaped[:cut])
            escaped = escaped[cut:]
        current = escaped
    if current.strip():
        chunks.append(current)
    return chunks


def _fields(block: Fields) -> Iterator[tuple[Json, bool]]:
    if block.title:
        yield _section(f"*{clip(escape(block.title), SECTION_TEXT - 2)}*"), False
    items = [
        {"type": "mrkdwn", "text": clip(f"*{escape(label) or '-'}*\n{escape(value) or '-'}", FIELD_TEXT)}
        for label, value in block.items
    ]
    for start in range(0, len(items), SECTION_FIELDS):
        yield {"type": "section", "fields": items[start : start + SECTION_FIELDS]}, False


def _fenced(lines: list[str], limit: int = SECTION_TEXT) -> Iterator[str]:
    """Lines (already escaped) packed into ``` blocks that fit a section."""
    room = limit - len("```\n\n```")
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, room)
        if chunk and size + len(line) + 1 > room:
            yield "```\n" + "\n".join(chunk) + "\n```"
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        yield "```\n" + "\n".join(chunk) + "\n```"


def _code(text: str) -> Iterator[tuple[Json, bool]]:
    lines = [escape(unfence(line)) for line in text.splitlines()] or [" "]
    for fenced in _fenced(lines):
        yield _section(fenced), False


def _table(block: Table) -> Iterator[tuple[Json, bool]]:
    width = max([len(block.columns), *(len(row) for row in block.rows)], default=0)
    cells = [
        [unfence(" ".join(str(c).split())) for c in (*row, *("",) * (width - len(row)))]
        for row in (block.columns, *block.rows)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    if block.columns:
        lines.insert(1, "  ".join("-" * w for w in widths))
    if block.title:
        yield _section(f"*{clip(escape(block.title), SECTION_TEXT - 2)}*"), False
    for fenced in _fenced([escape(line) for line in lines] or [" "]):
        yield _section(fenced), False


def _dialog(title: str, text: str, confirm: str, *, danger: bool) -> Json:
    dialog: Json = {
        "title": _plain(title, 100),
        "text": _plain(text, 300),
        "confirm": _plain(confirm, 30),
        "deny": _plain("Cancel", 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def _confirm(block: Confirm, command: str) -> Iterator[tuple[Json, bool]]:
    mark = ":warning: " if block.danger else ":grey_question: "
    yield _section(mark + f"*{clip(escape(block.prompt), SECTION_TEXT - 20)}*"), True
    confirm: Json = {
        "type": "button",
        "action_id": CONFIRM_ACTION,
        "text": _plain("Confirm", BUTTON_TEXT),
        "value": f"yes {block.token}",
        "style": "danger" if block.danger else "primary",
        "confirm": _dialog("Are you sure?", block.prompt, "Yes, go ahead", danger=block.danger),
    }
    cancel: Json = {
        "type": "button",
        "action_id": CANCEL_ACTION,
        "text": _plain("Cancel", BUTTON_TEXT),
        "value": f"no {block.token}",
    }
    yield (
        {
            "type": "actions",
            "block_id": clip(f"esx_confirm_{block.token}", 255),
            "elements": [confirm, cancel],
        },
        True,
    )
    expires = block.expires_at.astimezone(UTC).strftime("%H:%M UTC")
    form, token = escape(command), escape(block.token)
    typed = f"`{form} yes {token}` (`{form} no {token}` drops it)"
    yield _context(f"Or type {typed} · expires {expires}"), True


def _button(button: Button, index: int) -> Json:
    element: Json = {
        "type": "button",
        "action_id": f"{BUTTON_ACTION}_{index}",
        "text": _plain(button.label, BUTTON_TEXT),
        "value": button.command,
    }
    if button.danger:
        element["style"] = "danger"
        element["confirm"] = _dialog(button.label, f"Run “{button.command}”?", button.label, danger=True)
    return element


def _actions(buttons: tuple[Button, ...]) -> Iterator[tuple[Json, bool]]:
    usable = [b for b in buttons if 0 < len(b.command) <= BUTTON_VALUE]
    for start in range(0, len(usable), ACTIONS_ELEMENTS):
        group = usable[start : start + ACTIONS_ELEMENTS]
        elements = [_button(b, start + i) for i, b in enumerate(group)]
        yield {"type": "actions", "elements": elements}, True


def _text_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def _interactive(block: Json) -> bool:
    return block.get("type") == "actions"


def _fit(blocks: list[tuple[Json, bool]]) -> list[Json]:
    """At most 50 blocks and the text budget; essential (interactive) blocks are kept first."""
    total = sum(_text_size(b) for b, _ in blocks)
    if len(blocks) <= MAX_BLOCKS and total <= BLOCK_TEXT_BUDGET:
        return [b for b, _ in blocks]
    note_room = 200
    essential = [b for b, keep in blocks if keep][: MAX_BLOCKS - 1]
    blocks = [(b, keep and any(b is e for e in essential)) for b, keep in blocks]
    count_left = MAX_BLOCKS - 1 - len(essential)
    chars_left = BLOCK_TEXT_BUDGET - note_room - sum(_text_size(b) for b in essential)
    kept: list[Json] = []
    dropped = 0
    note_at: int | None = None
    for block, keep in blocks:
        size = _text_size(block)
        if keep or (count_left > 0 and size <= chars_left and note_at is None and not _interactive(block)):
            kept.append(block)
            if not keep:
                count_left -= 1
                chars_left -= size
            continue
        dropped += 1
        if note_at is None:
            note_at = len(kept)
    if note_at is not None:
        kept.insert(note_at, _context(f":scissors: {dropped} more part(s) did not fit in one Slack message."))
    return kept
