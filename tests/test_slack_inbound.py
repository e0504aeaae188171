"""Slack payloads to ``Incoming``: markup decoded, bots/edits/ourselves ignored, stable dedupe keys."""

from __future__ import annotations

from bot.chat.slack_inbound import Kind, from_action, from_event, from_slash, plain_text
from tests.slack_fake import BOT_USER_ID, SlackFake


def test_plain_text_undoes_slack_markup() -> None:
    text = f"<@{BOT_USER_ID}>  check <http://esx-01.lab|esx-01.lab> &amp; <mailto:a@b.c|a@b.c> &lt;x&gt;"
    assert plain_text(text, BOT_USER_ID) == "check esx-01.lab & a@b.c <x>"


def test_events_that_are_not_commands_are_skipped() -> None:
    fake = SlackFake()
    _, payload = fake.people.dm_payload("check esx-01")
    assert from_event(payload, BOT_USER_ID) is not None
    for change in (
        {"subtype": "message_changed"},
        {"bot_id": "B1"},
        {"user": BOT_USER_ID},
        {"channel_type": "channel"},
    ):
        assert from_event({**payload, "event": {**payload["event"], **change}}, BOT_USER_ID) is None
    assert from_event({"event": "nonsense"}, BOT_USER_ID) is None
    assert from_slash({"text": "check"}) is None
    assert from_action({"actions": []}) is None


def test_keys_and_defaults() -> None:
    fake = SlackFake()
    slash = from_slash(fake.people.slash_payload(""))
    assert slash is not None
    assert (slash.kind, slash.text, slash.key.startswith("trigger:")) == (Kind.SLASH, "help", True)
    message, payload = fake.people.dm_payload("/esx check esx-01")
    dm = from_event(payload, BOT_USER_ID)
    assert dm is not None
    assert (dm.kind, dm.text, dm.key, dm.direct) == (
        Kind.DM,
        "check esx-01",
        f"event:{payload['event_id']}",
        True,
    )
    assert dm.sent_at is not None
    assert abs(dm.sent_at.timestamp() - float(message.ts)) < 1e-3
