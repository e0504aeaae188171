"""The Slack adapter in HTTP mode (Events API): signed requests run, unsigned/wrongly signed/stale ones
are rejected with 401 before anything runs, and Slack's HTTP retries of an event run once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.slack_fake import SlackFake
from tests.slack_harness import running_adapter

OPS = "C0OPS0001"


async def test_signed_slash_command_runs(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path, mode="http") as (adapter, recorder):
        url = f"http://127.0.0.1:{adapter.http_port}/slack/events"
        result = await slack_fake.post_http(
            url, "slash_commands", slack_fake.people.slash_payload("check esx-01")
        )
        assert result.status == 200
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        assert [c.text for c in recorder.commands] == ["check esx-01"]
        assert adapter.health().connected


async def test_unsigned_wrongly_signed_and_stale_requests_are_rejected(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    async with running_adapter(slack_fake, tmp_path, mode="http") as (adapter, recorder):
        url = f"http://127.0.0.1:{adapter.http_port}/slack/events"
        payload = slack_fake.people.slash_payload("patch esx-01")
        unsigned = await slack_fake.post_http(url, "slash_commands", payload, signed=False)
        wrong = await slack_fake.post_http(url, "slash_commands", payload, secret="not-the-secret")
        stale = await slack_fake.post_http(url, "slash_commands", payload, age=6 * 60)
        assert (unsigned.status, wrong.status, stale.status) == (401, 401, 401)
        await asyncio.sleep(0.2)
        assert recorder.commands == []
        assert slack_fake.calls_to("chat.postMessage") == []


async def test_http_event_retries_run_once(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path, mode="http") as (adapter, recorder):
        url = f"http://127.0.0.1:{adapter.http_port}/slack/events"
        message, payload = slack_fake.people.mention_payload("check esx-01")
        first = await slack_fake.post_http(url, "events_api", payload)
        retry = await slack_fake.post_http(url, "events_api", payload, retry_num=1)
        assert (first.status, retry.status) == (200, 200)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1)
        second = await slack_fake.post_http(
            url, "slash_commands", slack_fake.people.slash_payload("check esx-02")
        )
        assert second.status == 200
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2)
        assert [c.text for c in recorder.commands] == ["check esx-01", "check esx-02"]
        assert recorder.commands[0].message_id == message.ts


async def test_http_url_verification_challenge(slack_fake: SlackFake, tmp_path: Path) -> None:
    async with running_adapter(slack_fake, tmp_path, mode="http") as (adapter, _):
        url = f"http://127.0.0.1:{adapter.http_port}/slack/events"
        body = {"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                "type": "url_verification"}  # fmt: skip
        result = await slack_fake.post_http(url, "events_api", body)
        assert result.status == 200
        assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in result.body
