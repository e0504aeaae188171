"""What real Slack does on bad days, from the Slack fake, against the real bot: the person still hears back.

5xx pages, ``ok:false`` with and without ``error``, 429 without ``Retry-After``, ``not_in_channel``
(answered through ``response_url``), a revoked token (reported, not "healthy"), clicks on ephemeral
messages (no ``message`` in the payload), reconnects without ``hello``, and a post answered without
``ts`` (never stored, never edited as ``ts="None"``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.chat.base import DeliveryError
from bot.messages import Reply
from tests.fixtures.matrix_bot import HOST
from tests.slack_bot import OPS, WAIT, actions_blocks, block_text, running_slack_bot
from tests.slack_fake import Message, SlackFake
from tests.slack_fake.web_api import Channel

RETRYING = 20.0  # a reply retried with backoff (1 s, 2 s, 4 s …) on a loaded box


def _answers(fake: SlackFake, needle: str, channel: str = OPS) -> list[Message]:
    return [m for m in fake.bot_messages(channel) if needle in block_text(m) or needle in m.text]


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (500, "<html><body>An error occurred</body></html>", {}),
        (503, {"ok": False, "error": "service_unavailable"}, {}),
        (200, {"ok": False}, {}),
        (200, {"ok": False, "error": "internal_error"}, {}),
        (429, {"ok": False, "error": "ratelimited"}, {}),
    ],
    ids=["html-500", "503", "ok-false-no-error", "internal_error", "429-no-retry-after"],
)
async def test_a_reply_survives_a_bad_answer_from_slack(
    slack_fake: SlackFake, tmp_path: Path, status: int, body: object, headers: dict[str, str]
) -> None:
    times = 5 if status == 429 else 1  # 429: more than the SDK's own retries
    slack_fake.fail("chat.postMessage", status=status, body=body, headers=headers, times=times)  # type: ignore[arg-type]
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        await slack_fake.slash("check esx01")
        await slack_fake.wait_for(lambda: bool(_answers(slack_fake, "esx01")), timeout=RETRYING + 20)
    posts = slack_fake.calls_to("chat.postMessage")
    assert len(posts) >= 2 and posts[-1].response.get("ok") is True


async def test_a_confirm_click_answered_with_internal_error_still_tells_the_person(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        await slack_fake.slash(f"bounce {HOST}")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
        (preview,) = slack_fake.bot_messages(OPS)
        assert actions_blocks(preview)
        slack_fake.fail("chat.postMessage", body={"ok": False, "error": "internal_error"})
        await slack_fake.click(preview, action_id="esx_confirm")
        await slack_fake.wait_for(lambda: bool(_answers(slack_fake, "Bouncing")), timeout=RETRYING)


async def test_a_click_on_an_ephemeral_message_runs_and_is_answered(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        await slack_fake.slash(f"bounce {HOST}")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
        (preview,) = slack_fake.bot_messages(OPS)
        payload = slack_fake.people.click_payload(preview, action_id="esx_confirm", ephemeral=True)
        assert "message" not in payload
        await slack_fake.send_envelope("interactive", payload)
        await slack_fake.wait_for(lambda: bool(_answers(slack_fake, "Bouncing")), timeout=WAIT)


async def test_not_in_channel_answers_the_person_through_response_url(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    slack_fake.workspace.channels["C0PRIV001"] = Channel(id="C0PRIV001", name="private", bot_member=False)
    async with running_slack_bot(slack_fake, tmp_path / "bot.db"):
        await slack_fake.slash("check esx01", channel="C0PRIV001")
        await slack_fake.wait_for(lambda: bool(slack_fake.responses), timeout=WAIT)
    (response,) = slack_fake.responses
    assert response["response_type"] == "ephemeral"
    shown = str(response["blocks"])
    assert "esx01" in shown and "not_in_channel" in shown and "/invite" in shown
    assert [c.response["error"] for c in slack_fake.calls_to("chat.postMessage")] == ["not_in_channel"]


async def test_a_revoked_token_is_reported_at_start_and_recovers(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    slack_fake.revoke("token_revoked")
    async with running_slack_bot(slack_fake, tmp_path / "bot.db") as bot:
        await slack_fake.wait_for(lambda: bot.adapter.token_problem is not None, timeout=WAIT)
        assert slack_fake.calls_to("auth.test")[0].response == {"ok": False, "error": "token_revoked"}
        health = bot.adapter.health()
        assert not health.connected and "token_revoked" in health.detail
        slack_fake.workspace.revoked = None
        await bot.adapter.send(OPS, Reply.text("back"))
        assert bot.adapter.health().connected


async def test_reconnects_are_counted_without_hello(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db") as bot:
        assert bot.adapter.health().reconnects == 0
        slack_fake.say_hello = False
        await slack_fake.disconnect()
        await slack_fake.wait_for(lambda: slack_fake.connections_opened == 2, timeout=WAIT)
        await slack_fake.wait_for(lambda: slack_fake.open_connections == 1, timeout=WAIT)
        for _ in range(50):
            if bot.adapter.health().reconnects == 1:
                break
            await asyncio.sleep(0.1)
        assert bot.adapter.health().reconnects == 1


async def test_a_post_without_ts_is_never_stored_or_edited_as_none(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_slack_bot(slack_fake, tmp_path / "bot.db") as bot:
        slack_fake.fail("chat.postMessage", body={"ok": True, "channel": OPS})
        with pytest.raises(DeliveryError, match="without a message ts"):
            await bot.adapter.send(OPS, Reply.text("card"))
        slack_fake.fail("chat.postMessage", body={"ok": True, "channel": OPS})
        await bot.app.outbox.enqueue(f"slack:{OPS}", Reply.text("job card 1/2"), key="card")
        await bot.app.outbox.enqueue(f"slack:{OPS}", Reply.text("job card 2/2"), key="card/1", edit_of="card")
        await slack_fake.wait_for(lambda: bool(_answers(slack_fake, "job card 2/2")), timeout=WAIT)
    assert all(c.args.get("ts") not in (None, "None", "") for c in slack_fake.calls_to("chat.update"))
