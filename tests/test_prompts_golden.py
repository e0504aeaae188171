"""Prompts as each platform shows them, in each kind of room: golden files, and a check of every command form.

The replies come from the real dispatcher (empty command, unknown command, a typo, a usage error, a
failed pre-check with its override hint, a confirmation preview, the last page of ``more``), rendered
by the platform's own renderer. Every back-ticked span or ``<code>`` that names a command must be
typed the way that room accepts: ``/esx …`` in a Slack channel, ``!esx …`` in a Matrix room, bare in
a DM or on the console.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.chat.render_matrix import render as render_matrix
from bot.chat.render_slack import render as render_slack
from bot.chat.render_text import render_text
from bot.messages import Command, Conversation, Reply, User
from tests.fixtures.bot import OPERATOR, MakeBot
from tests.fixtures.matrix_bot import SPECS
from tests.golden import check_golden

GOLDEN = Path(__file__).parent / "golden" / "prompts"
PROMPTS = (
    "",
    "frobnicate",
    "hepl",
    "help chek",
    "check",
    "ack x1",
    "shutdown esx02.lab.local",
    "bounce esx01.lab.local",
    "bounce esx02.lab.local",
    "no TOKEN",
    "more",
)
NAMES = {name for spec in SPECS for name in (spec.name, *spec.aliases)}

# (room kind, platform, prefix the room needs, renderer)
ROOMS: dict[str, tuple[str, str, bool, Callable[[Reply], str]]] = {
    "slack-channel": (
        "slack",
        "/esx",
        True,
        lambda r: json.dumps(render_slack(r).arguments(), indent=1, ensure_ascii=False),
    ),
    "slack-dm": (
        "slack",
        "",
        False,
        lambda r: json.dumps(render_slack(r).arguments(), indent=1, ensure_ascii=False),
    ),
    "matrix-room": (
        "matrix",
        "!esx",
        True,
        lambda r: json.dumps(render_matrix(r).content(), indent=1, ensure_ascii=False),
    ),
    "matrix-dm": (
        "matrix",
        "",
        False,
        lambda r: json.dumps(render_matrix(r).content(), indent=1, ensure_ascii=False),
    ),
    "console": ("console", "", False, render_text),
}


def _spans(rendered: str) -> list[str]:
    text = rendered.replace("\\u0060", "`")
    return re.findall(r"`([^`\n]+)`", text) + re.findall(r"<code>(.*?)</code>", text)


@pytest.mark.parametrize("room", sorted(ROOMS))
async def test_every_prompt_names_a_form_the_room_accepts(make_bot: MakeBot, room: str) -> None:
    platform, prefix, needs_prefix, show = ROOMS[room]
    bot = await make_bot(specs=SPECS)
    where = Conversation(platform, "ops" if needs_prefix else "dm", direct=not needs_prefix)
    out: list[str] = []
    token = ""
    for text in PROMPTS:
        text = text.replace("TOKEN", token)
        command = Command(User(OPERATOR), where, text, sent_at=bot.clock.now(), prefix=prefix)
        reply = await bot.app.dispatcher.handle(command)
        token = str(reply.data.get("confirm", {}).get("token", token))
        rendered = show(reply).replace(token, "TOKEN") if token else show(reply)
        rendered = re.sub(r"\(ref [0-9a-f]{8}\)", "(ref REF)", rendered)
        out.append(
            f"### {prefix} {text.replace(token, 'TOKEN') if token else text}".rstrip() + "\n" + rendered
        )
        for span in _spans(rendered):
            words = span.split()
            bare = words[0] in NAMES
            typed = bool(prefix) and words[0] == prefix and len(words) > 1 and words[1] in NAMES
            assert not (needs_prefix and bare), f"{room}: `{span}` cannot be typed like that here ({text!r})"
            assert needs_prefix or not typed or platform != "console", f"{room}: `{span}` ({text!r})"
    check_golden(GOLDEN / f"{room}.txt", "\n\n".join(out) + "\n")
