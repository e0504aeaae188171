"""Long answers are paged: on a 500-host fleet a person reaches every verdict of ``pr`` with ``more``.

Each page is rendered as Slack Block Kit and as Matrix HTML, the way the adapters send it, and every
host must show up in what a person reads: nothing is left as "N more part(s) did not fit". On the
Slack fake, a person clicks "Next" until the last page.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.builds import BuildCatalog
from bot.chat.render_matrix import render as render_matrix
from bot.chat.render_slack import render as render_slack
from bot.clock import FakeClock
from bot.durations import format_duration
from bot.inventory.demo import demo_inventory
from bot.inventory.merged import StaticInventory
from bot.messages import Actions, Command, Conversation, Reply, User, shorten
from bot.runtime.app import App
from tests.fixtures.bot import OPERATOR, bot_settings
from tests.slack_bot import OPS, WAIT, actions_blocks, block_text, running_slack_bot
from tests.slack_fake import SlackFake

FLEET = 500


def _slack_text(reply: Reply) -> str:
    return json.dumps(render_slack(reply).blocks, ensure_ascii=False)


async def _fleet_app(tmp_path: Path) -> App:
    clock = FakeClock()
    demo = demo_inventory(BuildCatalog.bundled(), clock).hosts()
    hosts = [replace(demo[i % len(demo)], name=f"esx{i:03d}.big.local") for i in range(FLEET)]
    inventory = StaticInventory(hosts, "500 hosts", clock.now())
    return await App.open(bot_settings(tmp_path), clock=clock, inventory=inventory)


async def test_every_verdict_of_pr_can_be_reached_on_slack_and_matrix(tmp_path: Path) -> None:
    app = await _fleet_app(tmp_path)
    try:
        for platform, prefix in (("slack", "/esx"), ("matrix", "!esx")):
            where = Conversation(platform, "ops")

            async def say(text: str, where: Conversation = where, prefix: str = prefix) -> Reply:
                command = Command(
                    User(OPERATOR), where, text, sent_at=app.services.clock.now(), prefix=prefix
                )
                return await app.dispatcher.handle(command)

            first = await say("pr 2777003")
            assert first.ok, first.summary
            expected = set(first.data["verdicts"])
            assert len(expected) == FLEET
            seen_slack: set[str] = set()
            seen_matrix: set[str] = set()
            reply, pages = first, 0
            while True:
                pages += 1
                slack, matrix = _slack_text(reply), render_matrix(reply, prefix=prefix).body
                assert "did not fit" not in slack
                seen_slack |= set(re.findall(r"esx\d{3}", slack))
                seen_matrix |= set(re.findall(r"esx\d{3}", matrix))
                if not any(isinstance(b, Actions) for b in reply.blocks):
                    break
                assert f"`{prefix} more`" in matrix.replace("!esx more", f"{prefix} more")
                reply = await say("more")
                assert reply.ok, reply.summary
            assert pages > 1
            assert "That was the last row." in render_matrix(reply).body
            assert seen_slack == seen_matrix == expected
            again = await say("more")
            assert "Nothing more to show" in again.summary
    finally:
        await app.close()


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (14400, 129600, 90, 0)] == [
        "4h",
        "1d12h",
        "1m30s",
        "0s",
    ]


def test_cut_titles_say_they_were_cut() -> None:
    assert shorten("x" * 100, 90) == "x" * 89 + "…"
    assert shorten("short", 90) == "short"


async def test_on_slack_the_next_button_reaches_every_verdict(slack_fake: SlackFake, tmp_path: Path) -> None:
    clock = FakeClock()
    demo = demo_inventory(BuildCatalog.bundled(), clock).hosts()
    hosts = [replace(demo[i % len(demo)], name=f"esx{i:03d}.big.local") for i in range(FLEET)]
    inventory = StaticInventory(hosts, "500 hosts", clock.now())
    async with running_slack_bot(slack_fake, tmp_path / "bot.db", inventory=inventory):
        await slack_fake.slash("pr 2777003")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
        clicks = 0
        while True:
            last = slack_fake.bot_messages(OPS)[-1]
            buttons = [e for b in actions_blocks(last) for e in b["elements"] if e.get("value") == "more"]
            if not buttons:
                break
            count = len(slack_fake.bot_messages(OPS))
            await slack_fake.click(last, value="more")
            clicks += 1
            await slack_fake.wait_for(lambda n=count: len(slack_fake.bot_messages(OPS)) > n, timeout=WAIT)
    shown = " ".join(block_text(m) for m in slack_fake.bot_messages(OPS))
    assert set(re.findall(r"esx\d{3}", shown)) == {f"esx{i:03d}" for i in range(FLEET)}
    assert "did not fit" not in shown and "That was the last row." in shown
    assert clicks > 1
