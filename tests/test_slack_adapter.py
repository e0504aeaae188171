"""The Slack adapter end to end against the Slack fake over Socket Mode: the right reply in the right
thread, buttons, redeliveries, 429s, stale commands, disconnects."""

from __future__ import annotations

import time
from pathlib import Path

from bot.chat.base import DeliveryError
from bot.messages import Reply
from tests.slack_fake import SlackFake
from tests.slack_harness import running_adapter

OPS = "C0OPS0001"


def texts(fake: SlackFake, channel: str = OPS) -> list[str]:
    return [m.text for m in fake.bot_messages(channel)]


async def test_slash_command_is_acked_then_answered_in_channel(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (adapter, recorder):
        envelope = await slack_fake.slash("check esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        (command,) = recorder.commands
        assert (command.user.id, command.text, command.conversation.room) == (
            "slack:U0ANN0001",
            "check esx-01",
            OPS,
        )
        await slack_fake.wait_for(lambda: len(slack_fake.acks) == 1)  # Bolt sends it ~10 ms after ack()
        (ack,) = slack_fake.acks
        assert ack.envelope_id == envelope
        assert ack.delay < 1.0
        (message,) = slack_fake.bot_messages(OPS)
        assert message.thread_ts is None
        assert message.text == "esx-01: affected"
        assert "<@U0ANN0001> ran `/esx check esx-01`" in message.blocks[0]["elements"][0]["text"]
        assert adapter.health().connected


async def test_mention_replies_in_channel_in_its_thread_or_opens_one(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_adapter(slack_fake, tmp_path) as (_, recorder):
        top = await slack_fake.mention("check esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        assert slack_fake.bot_messages(OPS)[0].thread_ts is None
        root = slack_fake.people.user_message("any ideas?", user="U0BOB0001", channel=OPS)
        await slack_fake.mention("check esx-02", thread_ts=root.ts)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2)
        assert slack_fake.bot_messages(OPS)[1].thread_ts == root.ts
        slow = await slack_fake.mention("slow")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 3)
        assert slack_fake.bot_messages(OPS)[2].thread_ts == slow.ts
        assert [c.text for c in recorder.commands] == ["check esx-01", "check esx-02", "slow"]
        assert recorder.commands[0].message_id == top.ts
        assert recorder.commands[1].conversation.thread == root.ts


async def test_dm_is_answered_in_the_dm(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (_, recorder):
        message = await slack_fake.dm("check <http://esx-01.lab|esx-01.lab>", user="U0BOB0001")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(message.channel)) == 1)
        (command,) = recorder.commands
        assert command.text == "check esx-01.lab"
        assert command.conversation.direct
        assert texts(slack_fake, message.channel) == ["esx-01.lab: affected"]
        assert texts(slack_fake) == []


async def test_confirm_button_runs_yes_as_the_clicking_user(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (_, recorder):
        await slack_fake.slash("patch esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        (proposal,) = slack_fake.bot_messages(OPS)
        await slack_fake.click(proposal, value="yes tok1", user="U0BOB0001")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2)
        yes = recorder.commands[-1]
        assert (yes.text, yes.user.id) == ("yes tok1", "slack:U0BOB0001")
        answer = slack_fake.bot_messages(OPS)[1]
        assert answer.thread_ts == proposal.ts
        assert answer.text == "confirmed tok1"
        await slack_fake.wait_for(lambda: proposal.edits == 1)
        assert not [b for b in proposal.blocks or [] if b["type"] == "actions"]
        assert "<@U0BOB0001> ran `yes tok1`" in str(proposal.blocks)


async def test_redelivered_envelopes_run_once(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (_, recorder):
        slash = await slack_fake.slash("check esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        await slack_fake.redeliver(slash)
        _, payload = slack_fake.people.mention_payload("check esx-02")
        event = await slack_fake.send_envelope("events_api", payload)
        await slack_fake.send_envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")
        await slack_fake.redeliver(event)
        await slack_fake.wait_for(lambda: len(slack_fake.acks) == 5)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2)
        await slack_fake.slash("check esx-03")  # something after the duplicates, to wait on
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 3)
        assert [c.text for c in recorder.commands] == ["check esx-01", "check esx-02", "check esx-03"]
        assert len(slack_fake.bot_messages(OPS)) == 3


async def test_rate_limit_is_waited_out(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path):
        slack_fake.rate_limit("chat.postMessage", retry_after=1)
        await slack_fake.slash("check esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=6)
        limited, posted = slack_fake.calls_to("chat.postMessage")
        assert (limited.status, posted.status) == (429, 200)
        assert posted.at - limited.at >= 1.0


async def test_stale_host_changing_command_is_ignored_and_says_why(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_adapter(slack_fake, tmp_path) as (_, recorder):
        old = time.time() - 600
        await slack_fake.mention("patch esx-01", sent_at=old)
        await slack_fake.mention("check esx-01", sent_at=old + 1)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2)
        assert [c.text for c in recorder.commands] == ["check esx-01"]
        ignored = next(m for m in slack_fake.bot_messages(OPS) if m.text.startswith("Ignored"))
        assert "patch esx-01" in ignored.text
        assert "older than 120 s" in ignored.text


async def test_disconnect_frame_is_followed_by_a_reconnect(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (adapter, recorder):
        await slack_fake.disconnect("refresh_requested")
        await slack_fake.wait_for(
            lambda: slack_fake.connections_opened == 2 and slack_fake.open_connections == 1
        )
        await slack_fake.slash("check esx-01")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        assert slack_fake.deliveries[-1].connection == 2
        assert [c.text for c in recorder.commands] == ["check esx-01"]
        health = adapter.health()
        assert health.connected
        assert "1 reconnect" in health.detail


async def test_send_and_edit_for_the_outbox(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path) as (adapter, _):
        ts = await adapter.send(OPS, Reply.text("patching esx-01: 1/3"))
        await adapter.edit(OPS, ts, Reply.text("patching esx-01: 3/3"))
        (message,) = slack_fake.bot_messages(OPS)
        assert (message.ts, message.text, message.edits) == (ts, "patching esx-01: 3/3", 1)
        try:
            await adapter.send("C0NOWHERE", Reply.text("x"))
        except DeliveryError as exc:
            assert exc.permanent
            assert "channel_not_found" in str(exc)
        else:
            raise AssertionError("expected DeliveryError")
