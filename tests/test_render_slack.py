"""Slack rendering: golden files for the shapes, and Slack's own limits (checked by the fake's
validator) for replies far too large for one message. ``ESXBOT_UPDATE_GOLDEN=1`` rewrites the golden files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.chat.render_slack import BLOCK_TEXT_BUDGET, render, resolve_actions
from bot.messages import Actions, Button, Code, Confirm, Fields, Reply, Table, Text
from tests.golden import check_golden
from tests.reply_samples import COMMON, EXPIRES
from tests.slack_fake import validate_message

GOLDEN = Path(__file__).parent / "golden" / "slack"

CASES: dict[str, Reply] = {
    **COMMON,
    "confirm_harmless": Reply(
        summary="Subscribe?", blocks=(Confirm("m3n4", "Subscribe #ops", EXPIRES, False),)
    ),
    "hostile_text": Reply(
        summary="<!channel> & <https://evil|click>",
        blocks=(
            Text("<!here> ping & <@U123>"),
            Fields((("<k>", "a & b"),), title="<t>"),
            Table(("<c>",), (("```<x>```",),)),
            Code("``` & <y>"),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    message = render(CASES[name])
    rendered = json.dumps(message.arguments(), indent=2, ensure_ascii=False) + "\n"
    check_golden(GOLDEN / f"{name}.json", rendered)
    verdict = validate_message(message.text, list(message.blocks))
    assert verdict.error is None, verdict.messages


def test_text_is_escaped_so_it_cannot_ping_or_link() -> None:
    message = render(CASES["hostile_text"])
    assert message.text == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    dumped = json.dumps(message.blocks)
    assert "<!here>" not in dumped
    assert "<@U123>" not in dumped
    assert "```<" not in dumped
    assert "```&lt;x&gt;" not in dumped  # a table cell cannot close the fence it is shown in


def test_confirm_has_slacks_dialog_and_danger_style() -> None:
    message = render(CASES["confirm_shutdown"])
    actions = next(b for b in message.blocks if b["type"] == "actions")
    confirm, cancel = actions["elements"]
    assert (confirm["value"], confirm["style"], confirm["confirm"]["style"]) == (
        "yes k7q2",
        "danger",
        "danger",
    )
    assert confirm["confirm"]["text"]["text"] == "Shut down esx-01"
    assert cancel["value"] == "no k7q2"
    assert "style" not in cancel
    harmless = render(CASES["confirm_harmless"]).blocks[1]["elements"][0]
    assert harmless["style"] == "primary"
    assert "style" not in harmless["confirm"]


HUGE: dict[str, Reply] = {
    "long_text": Reply(summary="s" * 50_000, blocks=(Text("word " * 20_000),)),
    "one_long_line": Reply(summary="x", blocks=(Text("&" * 9_000),)),
    "many_fields": Reply(summary="x", blocks=(Fields(tuple((f"k{i}", "v" * 2500) for i in range(35))),)),
    "big_table": Reply(
        summary="x", blocks=(Table(("a", "b"), tuple((str(i), "y" * 80) for i in range(2000))),)
    ),
    "many_blocks": Reply(
        summary="x",
        blocks=(*(Text(f"line {i}") for i in range(80)), Confirm("t1", "Patch 80 hosts", EXPIRES)),
    ),
    "many_buttons": Reply(
        summary="x", blocks=(Actions(tuple(Button("b" * 100, f"ack {i}") for i in range(60))),)
    ),
    "empty": Reply(summary="", blocks=(Text(""), Code(""), Fields(()), Table((), ()))),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_oversized_replies_fit_slacks_limits(name: str) -> None:
    message = render(HUGE[name])
    verdict = validate_message(message.text, list(message.blocks))
    assert verdict.error is None, (verdict.error, verdict.messages[:3])
    assert message.text


def test_truncation_keeps_the_buttons_and_says_so() -> None:
    message = render(HUGE["many_blocks"])
    assert len(message.blocks) == 50
    assert message.blocks[-2]["type"] == "actions"
    assert message.blocks[-2]["elements"][0]["value"] == "yes t1"
    notes = [b for b in message.blocks if b["type"] == "context" and ":scissors:" in b["elements"][0]["text"]]
    assert len(notes) == 1
    assert "34 more" in notes[0]["elements"][0]["text"]


def test_long_text_is_split_not_cut() -> None:
    message = render(HUGE["long_text"])
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(s) <= 3000 for s in sections)
    assert sum(len(s) for s in sections) <= BLOCK_TEXT_BUDGET
    assert len(sections) == 3
    assert ":scissors:" in message.blocks[-1]["elements"][0]["text"]


def test_resolve_actions_replaces_only_the_clicked_block() -> None:
    blocks = render(CASES["confirm_shutdown"]).blocks
    resolved = resolve_actions(blocks, "esx_confirm_k7q2", ":white_check_mark: confirmed by <@U1>")
    assert [b["type"] for b in resolved] == ["section", "section", "context", "context"]
    assert resolved[2]["elements"][0]["text"].startswith(":white_check_mark:")
