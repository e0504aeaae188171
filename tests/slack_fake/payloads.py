"""Slack's inbound payloads (Events API, slash commands, block actions) shaped as Slack sends them,
plus the v0 request signature Slack puts on HTTP deliveries.

Shapes follow docs.slack.dev ("Events API" outer event, `app_mention`, `message.im`, "Slash commands",
"block_actions payload") and the envelopes of "Using Socket Mode".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

TEAM_ID = "T0FAKE001"
TEAM_DOMAIN = "esxfake"
APP_ID = "A0FAKEAPP"
BOT_USER_ID = "U0BOTUSER"
BOT_ID = "B0BOTID01"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def event_callback(event: dict[str, Any], *, event_id: str, event_time: int) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }


def mention_event(*, user: str, channel: str, text: str, ts: str, thread_ts: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM_ID,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def im_event(*, user: str, channel: str, text: str, ts: str, thread_ts: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM_ID,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def slash_command(
    *,
    command: str,
    text: str,
    user: str,
    user_name: str,
    channel: str,
    channel_name: str,
    trigger_id: str,
    response_url: str,
) -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions(
    *,
    user: str,
    user_name: str,
    channel: str,
    channel_name: str,
    message: dict[str, Any],
    action: dict[str, Any],
    block_id: str | None,
    trigger_id: str,
    response_url: str,
    action_ts: str,
) -> dict[str, Any]:
    clicked = {
        "action_id": action.get("action_id"),
        "block_id": block_id,
        "text": action.get("text"),
        "value": action.get("value"),
        "type": "button",
        "action_ts": action_ts,
    }
    if "style" in action:
        clicked["style"] = action["style"]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [clicked],
    }


def http_body(kind: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """Encode a payload as Slack's HTTP deliveries do: JSON for events, forms for the rest."""
    if kind == "events_api":
        return json.dumps(payload).encode(), "application/json"
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


async def post_signed(
    url: str, kind: str, payload: dict[str, Any], secret: str, age: float, signed: bool, retry_num: int | None
) -> tuple[int, str]:
    """POST a payload the way Slack's HTTP delivery does; ``age`` back-dates the timestamp."""
    body, content_type = http_body(kind, payload)
    headers = {"Content-Type": content_type}
    if signed:
        timestamp = str(int(time.time() - age))
        headers["X-Slack-Request-Timestamp"] = timestamp
        headers["X-Slack-Signature"] = signature(secret, timestamp, body)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()
