"""Slack end to end with the real bot: ``App`` + dispatcher + demo inventory over the Slack fake.

The check card is asserted on the Block Kit the fake received; confirmations go through the Confirm
button as Slack would send the click; stale host-changing commands are refused, read-only ones run.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

from tests.fixtures.matrix_bot import HOST
from tests.slack_bot import (
    ANN,
    BOB,
    OPS,
    WAIT,
    actions_blocks,
    block_text,
    card_fields,
    running_slack_bot,
)
from tests.slack_fake import Message, SlackFake

RELEASE = "ESXi 7.0 Update 2a (7.0.2, build 17867351)"


def assert_esx01_card(message: Message) -> None:
    fields = card_fields(message)
    assert fields["Release"] == RELEASE
    assert fields["Boot device"].startswith("usb (")
    assert fields["Bootbank"] == "mounted"
    assert f"*{HOST}*" in block_text(message)  # the card's title section
    assert message.text.startswith(f"{HOST}: ESXi 7.0 Update 2a build 17867351, boots from usb")


async def test_slash_command_answers_with_the_check_card_in_the_channel(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        await slack_fake.slash("check esx01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
    (answer,) = slack_fake.bot_messages(OPS)
    assert answer.thread_ts is None
    assert f"<@{ANN}> ran `/esx check esx01`" in block_text(answer)
    assert_esx01_card(answer)


async def test_mention_in_a_thread_is_answered_in_that_thread(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        root = slack_fake.people.user_message("esx01 looks odd", user=BOB, channel=OPS)
        await slack_fake.mention("check esx01", user=BOB, thread_ts=root.ts)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
    (answer,) = slack_fake.bot_messages(OPS)
    assert answer.thread_ts == root.ts
    assert_esx01_card(answer)


async def test_dm_is_answered_in_the_dm_only(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        asked = await slack_fake.dm("check esx01", user=BOB)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(asked.channel)) == 1, timeout=WAIT)
    (answer,) = slack_fake.bot_messages(asked.channel)
    assert asked.channel.startswith("D")
    assert answer.thread_ts is None
    assert_esx01_card(answer)
    assert slack_fake.bot_messages(OPS) == []


async def test_confirm_button_runs_once_as_the_clicker_and_refuses_a_viewer(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    def thread(ts: str) -> list[Message]:
        return [m for m in slack_fake.bot_messages(OPS) if m.thread_ts == ts]

    async with running_slack_bot(slack_fake, tmp_path / "bot.db") as bot:
        audit = bot.app.services.store.audit
        await slack_fake.slash(f"bounce {HOST}")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
        (proposal,) = slack_fake.bot_messages(OPS)
        (buttons,) = actions_blocks(proposal)
        confirm = buttons["elements"][0]
        assert confirm["style"] == "danger" and confirm["confirm"]["style"] == "danger"
        token = confirm["value"].removeprefix("yes ")
        as_first_seen = dataclasses.replace(proposal, blocks=copy.deepcopy(proposal.blocks))

        await slack_fake.click(proposal, value=f"yes {token}", user=BOB)  # a viewer
        await slack_fake.wait_for(lambda: len(thread(proposal.ts)) == 1, timeout=WAIT)
        assert f"Only slack:{ANN} can confirm" in thread(proposal.ts)[0].text
        assert actions_blocks(proposal), "a refused click must leave the buttons open"
        (refused,) = await audit.recent(1, user_id=f"slack:{BOB}")
        assert (refused.command, refused.outcome, refused.text) == ("yes", "failed", f"yes {token}")
        assert refused.detail and f"Only slack:{ANN} can confirm" in refused.detail

        click = await slack_fake.click(proposal, value=f"yes {token}", user=ANN)
        await slack_fake.wait_for(lambda: len(thread(proposal.ts)) == 2, timeout=WAIT)
        done = thread(proposal.ts)[1]
        assert done.text == f"Bouncing {HOST} (confirmed by slack:{ANN})."
        await slack_fake.wait_for(lambda: proposal.edits == 1, timeout=WAIT)
        assert actions_blocks(proposal) == []
        assert f"<@{ANN}> ran `yes {token}`" in block_text(proposal)

        await slack_fake.redeliver(click)  # the same envelope again: claimed already
        await slack_fake.click(as_first_seen, value=f"yes {token}", user=ANN)  # a stale view's button
        await slack_fake.wait_for(lambda: len(thread(proposal.ts)) == 3, timeout=WAIT)
        assert "already accepted" in thread(proposal.ts)[2].text
        await slack_fake.slash("help")  # one more round trip, after which nothing else may arrive
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 5, timeout=WAIT)
        ran = [e for e in await audit.recent(50) if e.command == "bounce"]
        answers = [e.outcome for e in await audit.recent(50, user_id=f"slack:{ANN}") if e.command == "yes"]
    assert answers == ["failed", "ok"], (
        "the replayed envelope ran nothing, the stale view's click was refused"
    )
    assert len(slack_fake.bot_messages(OPS)) == 5
    assert [(e.outcome, e.detail) for e in ran] == [
        ("confirmed", f"confirmed by slack:{ANN}"),
        ("confirm-pending", f"token {token}"),
    ]
    assert sum("Bouncing" in m.text for m in slack_fake.bot_messages()) == 1
    assert proposal.edits == 1


async def test_stale_host_changing_command_is_ignored_but_a_stale_read_runs(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db", stale_after=60) as bot:
        old = time.time() - 300
        await slack_fake.mention(f"bounce {HOST}", sent_at=old)
        await slack_fake.mention("check esx01", sent_at=old + 1)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2, timeout=WAIT)
        audit = await bot.app.services.store.audit.recent(10)
    assert [m.thread_ts for m in slack_fake.bot_messages(OPS)] == [None, None]
    ignored = next(m for m in slack_fake.bot_messages(OPS) if m.text.startswith("Ignored"))
    assert f"bounce {HOST}" in ignored.text and "older than 60 s" in ignored.text
    answered = next(m for m in slack_fake.bot_messages(OPS) if not m.text.startswith("Ignored"))
    assert_esx01_card(answered)
    assert [(e.command, e.outcome, e.text) for e in audit] == [("check", "ok", "check esx01")]


async def test_command_sent_while_the_bot_is_down_runs_once_after_restart(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    async with running_slack_bot(slack_fake, db):
        await slack_fake.mention("check esx01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
    _, payload = slack_fake.people.mention_payload("check esx02.lab.local")
    await slack_fake.send_envelope("events_api", payload)  # queued: no socket is open
    async with running_slack_bot(slack_fake, db):
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2, timeout=WAIT)
        await slack_fake.send_envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")
        await slack_fake.send_envelope("events_api", slack_fake.deliveries[0].payload, retry_attempt=2)
        await slack_fake.slash("help")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 3, timeout=WAIT)
        await slack_fake.wait_for(lambda: len(slack_fake.acks) == 5, timeout=WAIT)
    texts = [m.text for m in slack_fake.bot_messages(OPS)]
    assert texts[0].startswith(HOST) and texts[1].startswith("esx02.lab.local")
    assert len(texts) == 3, "the queued command ran once, its redeliveries not at all"
