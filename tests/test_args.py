"""The chat argument grammar: tokens, quotes, flags, keywords, choices, hostile text."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.grammar import BadArgument, tokenize
from bot.command.spec import bind, command
from bot.durations import parse_duration
from bot.messages import Reply
from tests.fixtures.bot import TestBot


def test_tokenize_quotes_and_spaces() -> None:
    assert tokenize('silence esx01  2h "USB stick replaced, see INC-42"') == [
        "silence",
        "esx01",
        "2h",
        "USB stick replaced, see INC-42",
    ]
    assert tokenize("say 'single quoted' x") == ["say", "single quoted", "x"]
    assert tokenize('a "b \\"c\\" d"') == ["a", 'b "c" d']
    assert tokenize("note “curly quotes” ok") == ["note", "curly quotes", "ok"]
    assert tokenize("a\tb\nc") == ["a", "b", "c"]
    assert tokenize('x --to="7.0 U2c"') == ["x", "--to=7.0 U2c"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('check "esx01', "unbalanced"),
        ("check esx01'", "unbalanced"),
        ("check \x00esx01", "control character"),
        ("check esx\x1b[31m01", "control character"),
        ("check \u202eesx01", "control character"),
        ("x" * 5000, "limit is"),
        (" ".join(["w"] * 100), "too many words"),
    ],
)
def test_hostile_text_is_refused(text: str, needle: str) -> None:
    with pytest.raises(BadArgument, match=needle):
        tokenize(text)


def test_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("15") == timedelta(minutes=15)
    for bad in ("", "0m", "2x", "h2", "1h 2q"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@command("demo", help="grammar test", role=Role.VIEWER)
async def demo(
    ctx: Context,
    target: str,
    count: int = 1,
    *rest: str,
    to: str | None = None,
    mode: Literal["power-off", "suspend", "none"] = "none",
    wait: timedelta = timedelta(minutes=5),
    dry_run: bool = False,
) -> Reply:
    return Reply.text("ok")


async def _bind(bot: TestBot, words: list[str]) -> tuple[list[object], dict[str, object]]:
    from bot.messages import Command, Conversation, User

    cmd = Command(User("console:otto"), Conversation("console", "console"), " ".join(words))
    ctx = Context(cmd, Role.OPERATOR, bot.app.services, gate=None)  # type: ignore[arg-type]
    return await bind(demo, ctx, words)


async def test_bind_positional_keywords_flags(bot: TestBot) -> None:
    args, kwargs = await _bind(
        bot, ["esx01", "3", "x", "y", "to", "7.0U2c", "--dry-run", "--mode", "SUSPEND"]
    )
    assert args == ["esx01", 3, "x", "y"]
    assert kwargs == {"to": "7.0U2c", "mode": "suspend", "wait": timedelta(minutes=5), "dry_run": True}
    args, kwargs = await _bind(bot, ["esx01", "--to=U2d", "--wait", "2h"])
    assert args == ["esx01", 1]
    assert kwargs["to"] == "U2d" and kwargs["wait"] == timedelta(hours=2) and kwargs["dry_run"] is False


@pytest.mark.parametrize(
    ("words", "needle"),
    [
        ([], "target: missing"),
        (["esx01", "three"], "not a valid int"),
        (["esx01", "--mode", "poweroff"], "Did you mean `power-off`"),
        (["esx01", "--dry-rn"], "Did you mean `--dry-run`"),
        (["esx01", "--dry-run=yes"], "takes no value"),
        (["esx01", "--to"], "needs a value"),
        (["esx01", "--wait", "soon"], "not a duration"),
    ],
)
async def test_bind_errors_have_one_shape(bot: TestBot, words: list[str], needle: str) -> None:
    with pytest.raises(BadArgument, match=needle):
        await _bind(bot, words)


def test_usage_line() -> None:
    assert demo.usage() == (
        "demo <target> [<count>] [<rest>...] [--to <to>] [--mode <power-off|suspend|none>]"
        " [--wait <duration>] [--dry-run]"
    )
