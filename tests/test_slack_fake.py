"""The Slack fake itself behaves like Slack: limits, tokens, 429s, Socket Mode hello/ack/retry/disconnect."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_fake import SlackFake, validate_message


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_limits_are_slacks() -> None:
    assert validate_message("hi", [section("x" * 3000)]).error is None
    too_long = validate_message("hi", [section("x" * 3001)])
    assert too_long.error == "invalid_blocks"
    assert "/blocks/0/text/text" in too_long.messages[0]
    assert validate_message("hi", [section("x")] * 51).error == "invalid_blocks"
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    assert validate_message("hi", [fields]).error == "invalid_blocks"
    assert validate_message("x" * 40_001, None).error == "msg_too_long"
    assert validate_message("", None).error == "no_text"
    assert validate_message("hi", [section("x" * 2900)] * 5).error == "msg_blocks_too_long"
    button = {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "value": "v"}
    assert validate_message("hi", [{"type": "actions", "elements": [button]}]).error == "invalid_blocks"
    dialog = {key: {"type": "plain_text", "text": "t"} for key in ("title", "text", "confirm", "deny")}
    ok_button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "b"},
        "value": "v",
        "style": "danger",
        "confirm": {**dialog, "style": "danger"},
    }
    assert validate_message("hi", [{"type": "actions", "elements": [ok_button]}]).error is None
    assert validate_message("hi", [{"type": "bogus"}]).error == "invalid_blocks"


async def test_web_api_checks_tokens_and_payloads(slack_fake: SlackFake) -> None:
    bot = AsyncWebClient(token="xoxb-fake-bot-token", base_url=slack_fake.base_url, retry_handlers=[])
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack_fake.base_url, retry_handlers=[])
    assert (await bot.auth_test())["user_id"] == "U0BOTUSER"
    with pytest.raises(SlackApiError) as info:
        await wrong.auth_test()
    assert info.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await bot.chat_postMessage(channel="C0OPS0001", text="hi", blocks=[section("x" * 3001)])
    assert info.value.response["error"] == "invalid_blocks"
    posted = await bot.chat_postMessage(channel="C0OPS0001", text="hello")
    await bot.chat_update(channel="C0OPS0001", ts=posted["ts"], text="edited")
    assert slack_fake.bot_messages("C0OPS0001")[0].text == "edited"
    with pytest.raises(SlackApiError) as info:
        await bot.chat_postMessage(channel="C0NOPE", text="hi")
    assert info.value.response["error"] == "channel_not_found"
    assert [c.method for c in slack_fake.calls][-1] == "chat.postMessage"


async def test_rate_limit_answers_429_with_retry_after(slack_fake: SlackFake) -> None:
    bot = AsyncWebClient(token="xoxb-fake-bot-token", base_url=slack_fake.base_url, retry_handlers=[])
    slack_fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await bot.chat_postMessage(channel="C0OPS0001", text="hi")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert (await bot.chat_postMessage(channel="C0OPS0001", text="hi"))["ok"]


async def test_socket_mode_hello_ack_retry_and_disconnect() -> None:
    async with SlackFake(ack_timeout=0.2, max_retries=2) as fake:
        app = AsyncWebClient(token="xapp-1-fake-app-token", base_url=fake.base_url)
        url = (await app.apps_connections_open(app_token="xapp-1-fake-app-token"))["url"]
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            hello = json.loads((await ws.receive()).data)
            assert hello["type"] == "hello"
            first = await fake.mention("check esx-01")
            envelope = json.loads((await ws.receive()).data)
            assert envelope["type"] == "events_api"
            assert envelope["payload"]["event"]["ts"] == first.ts
            retry = json.loads((await ws.receive()).data)  # not acked in time: Slack retries
            assert retry["retry_attempt"] == 1
            assert retry["retry_reason"] == "timeout"
            assert retry["payload"]["event_id"] == envelope["payload"]["event_id"]
            await ws.send_str(json.dumps({"envelope_id": retry["envelope_id"]}))
            await fake.wait_for(lambda: len(fake.acks) == 1)
            assert fake.timeouts == [envelope["envelope_id"]]
            await asyncio.sleep(0.3)
            assert len(fake.deliveries) == 2
            disconnect_task = asyncio.create_task(fake.disconnect("link_disabled", close_after=0.05))
            frame = json.loads((await ws.receive()).data)
            assert frame == {
                "type": "disconnect",
                "reason": "link_disabled",
                "debug_info": {"host": "applink-fake"},
            }
            await disconnect_task
            assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_socket_url_is_one_time_and_needs_the_app_token(slack_fake: SlackFake) -> None:
    bot = AsyncWebClient(token="xoxb-fake-bot-token", base_url=slack_fake.base_url)
    with pytest.raises(SlackApiError) as info:
        await bot.apps_connections_open(app_token="xoxb-fake-bot-token")
    assert info.value.response["error"] == "invalid_auth"
    url = (await bot.apps_connections_open(app_token="xapp-1-fake-app-token"))["url"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)
