"""Matrix rendering against golden files (``ESXBOT_UPDATE_GOLDEN=1`` rewrites them after a change)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.chat.render_matrix import HTML_FORMAT, render
from bot.messages import Actions, Button, Code, Confirm, Fields, Reply, Table, Text
from tests.golden import check_golden
from tests.reply_samples import COMMON

GOLDEN = Path(__file__).parent / "golden" / "matrix"

CASES: dict[str, Reply] = {
    **COMMON,
    "hostile_text": Reply(
        summary="<script>alert(1)</script>",
        blocks=(
            Text('<img src=x onerror="alert(1)"> & <b>bold</b>'),
            Fields((("<k>", "a & b"),), title="<t>"),
            Table(("<c>",), (("</td></tr></table><script>",),)),
            Code("</code></pre><script>x</script>"),
            Confirm("<tok>", "<prompt>", datetime(2021, 8, 24, 12, 5, tzinfo=UTC)),
            Actions((Button("<b>", "<cmd>"),)),
        ),
    ),
}

ALLOWED_TAGS = {
    *("p", "br", "strong", "font", "ul", "li", "pre", "code"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden_file(name: str) -> None:
    content = render(CASES[name]).content()
    check_golden(GOLDEN / f"{name}.json", json.dumps(content, ensure_ascii=False, indent=2) + "\n")


@pytest.mark.parametrize("name", sorted(CASES))
def test_html_holds_only_our_own_markup(name: str) -> None:
    parser = _Tags()
    parser.feed(render(CASES[name]).formatted_body)
    assert set(parser.tags) <= ALLOWED_TAGS
    assert {key for key, _ in parser.attrs} <= {"data-mx-color"}


def test_hostile_text_is_escaped_and_survives_as_text() -> None:
    message = render(CASES["hostile_text"])
    assert "<script>" not in message.formatted_body
    assert "&lt;script&gt;" in message.formatted_body
    assert "</td></tr></table><script>" in message.body


def test_confirm_tells_how_to_answer_with_the_configured_prefix() -> None:
    message = render(CASES["confirm_shutdown"], prefix="!ops")
    assert "React ✅ or type `!ops yes k7q2`; `!ops no k7q2` drops it (expires 12:05 UTC)." in message.body
    assert "<code>!ops yes k7q2</code>" in message.formatted_body
    assert message.content()["format"] == HTML_FORMAT
    assert message.content()["msgtype"] == "m.notice"


def test_short_table_rows_are_padded() -> None:
    body = render(CASES["host_card"]).body
    assert "2761169  fixed" in body


def test_inline_code_is_code_in_html_and_back_ticked_in_the_body() -> None:
    message = render(Reply.error("Unknown command `frobnicate`. Say `!esx <b>help</b>`."))
    assert "Unknown command `frobnicate`." in message.body
    assert "<code>frobnicate</code>" in message.formatted_body
    assert "<code>!esx &lt;b&gt;help&lt;/b&gt;</code>" in message.formatted_body
    assert "`" not in message.formatted_body
