"""The Web API half of the Slack fake: token checks, the methods esxbot calls, message storage.

Every call is recorded as an ``ApiCall``. Errors come back as Slack sends them: HTTP 200 with
``{"ok": false, "error": ...}``, except rate limiting: HTTP 429, ``Retry-After`` and ``ratelimited``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.slack_fake import payloads
from tests.slack_fake.blockkit import validate_message


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    token: str | None
    args: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float  # time.monotonic() when answered


@dataclass(slots=True)
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    user: str
    thread_ts: str | None = None
    bot_id: str | None = None
    edits: int = 0

    def as_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "user": self.user, "ts": self.ts, "text": self.text}
        if self.blocks is not None:
            body["blocks"] = self.blocks
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        if self.bot_id is not None:
            body["bot_id"] = self.bot_id
            body["app_id"] = payloads.APP_ID
        return body


@dataclass(slots=True)
class Channel:
    id: str
    name: str
    is_im: bool = False
    im_user: str | None = None
    bot_member: bool = True

    def as_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_im,
            "is_im": self.is_im,
            "is_member": self.bot_member,
        }
        if self.im_user is not None:
            body["user"] = self.im_user
        return body


@dataclass(slots=True)
class RateLimit:
    retry_after: int
    remaining: int


@dataclass(slots=True)
class Fault:
    """One canned bad answer: HTTP status, body (JSON, or raw text when a ``str``) and headers."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
    remaining: int = 1


@dataclass(slots=True)
class Workspace:
    """The state the Web API reads and writes."""

    bot_token: str
    app_token: str
    users: dict[str, str] = field(default_factory=dict)  # id -> name
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    revoked: str | None = None  # "token_revoked", "invalid_auth", "account_inactive": every bot call fails
    _last_ts: float = 0.0

    def next_ts(self) -> str:
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def dm_channel(self, user: str) -> Channel:
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user:
                return channel
        channel = Channel(id=f"D{user[1:]}", name=user, is_im=True, im_user=user)
        self.channels[channel.id] = channel
        return channel


Handler = Callable[[Workspace, dict[str, Any]], dict[str, Any]]


def _error(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **extra}


def _json_arg(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _channel_for_post(ws: Workspace, args: dict[str, Any]) -> Channel | dict[str, Any]:
    channel_id = args.get("channel")
    if not channel_id:
        return _error("channel_not_found")
    if channel_id.startswith("U"):
        return ws.dm_channel(channel_id)
    channel = ws.channels.get(channel_id)
    if channel is None:
        return _error("channel_not_found")
    if not channel.bot_member:
        return _error("not_in_channel")
    return channel


def _validated(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None] | dict[str, Any]:
    blocks = _json_arg(args.get("blocks"))
    text = args.get("text")
    verdict = validate_message(text, blocks)
    if verdict.error is not None:
        extra: dict[str, Any] = {}
        if verdict.messages:
            extra = {
                "errors": list(verdict.messages),
                "response_metadata": {"messages": [f"[ERROR] {m}" for m in verdict.messages]},
            }
        return _error(verdict.error, **extra)
    return (text or "", blocks)


def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{payloads.TEAM_DOMAIN}.slack.com/",
        "team": "ESX Fake",
        "user": "esxbot",
        "team_id": payloads.TEAM_ID,
        "user_id": payloads.BOT_USER_ID,
        "bot_id": payloads.BOT_ID,
        "is_enterprise_install": False,
    }


def post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel_for_post(ws, args)
    if isinstance(channel, dict):
        return channel
    content = _validated(args)
    if isinstance(content, dict):
        return content
    text, blocks = content
    thread_ts = args.get("thread_ts") or None
    message = Message(
        channel=channel.id,
        ts=ws.next_ts(),
        text=text,
        blocks=blocks,
        user=payloads.BOT_USER_ID,
        thread_ts=thread_ts,
        bot_id=payloads.BOT_ID,
    )
    ws.messages.append(message)
    return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_payload()}


def update_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel_for_post(ws, args)
    if isinstance(channel, dict):
        return channel
    message = ws.find(channel.id, str(args.get("ts")))
    if message is None:
        return _error("message_not_found")
    if message.user != payloads.BOT_USER_ID:
        return _error("cant_update_message")
    content = _validated(args)
    if isinstance(content, dict):
        return content
    message.text, message.blocks = content
    message.edits += 1
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": message.as_payload(),
    }


def post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel_for_post(ws, args)
    if isinstance(channel, dict):
        return channel
    if args.get("user") not in ws.users:
        return _error("user_not_found")
    content = _validated(args)
    if isinstance(content, dict):
        return content
    ts = ws.next_ts()
    ws.ephemerals.append({"channel": channel.id, "user": args["user"], "ts": ts, "text": content[0]})
    return {"ok": True, "message_ts": ts}


def conversations_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channels.get(str(args.get("channel")))
    if channel is None:
        return _error("channel_not_found")
    return {"ok": True, "channel": channel.as_payload()}


def conversations_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    users = [u for u in str(args.get("users", "")).split(",") if u]
    if len(users) != 1:
        return _error("not_enough_users" if not users else "too_many_users")
    if users[0] not in ws.users:
        return _error("user_not_found")
    return {"ok": True, "channel": {"id": ws.dm_channel(users[0]).id}}


def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user_id = str(args.get("user"))
    name = ws.users.get(user_id)
    if name is None:
        return _error("user_not_found")
    return {
        "ok": True,
        "user": {
            "id": user_id,
            "team_id": payloads.TEAM_ID,
            "name": name,
            "real_name": name.title(),
            "is_bot": False,
            "tz": "Europe/Berlin",
            "profile": {"display_name": name, "real_name": name.title()},
        },
    }


BOT_METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "chat.postMessage": post_message,
    "chat.update": update_message,
    "chat.postEphemeral": post_ephemeral,
    "conversations.info": conversations_info,
    "conversations.open": conversations_open,
    "users.info": users_info,
}


async def read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Arguments from query, form or JSON body, and the token from the header or the arguments."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update(dict(await request.post()))
    token = None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth.removeprefix("Bearer ").strip()
    return args, token or args.pop("token", None)


def answer(
    ws: Workspace, method: str, args: dict[str, Any], token: str | None, issue_socket_url: Callable[[], str]
) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    """HTTP status, body (JSON, or raw text for a canned 5xx page) and headers for one Web API call."""
    queued = ws.faults.get(method)
    if queued:
        fault = queued[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queued.pop(0)
        return fault.status, fault.body, dict(fault.headers)
    if ws.revoked is not None and method != "apps.connections.open" and token == ws.bot_token:
        return 200, _error(ws.revoked), {}
    limit = ws.rate_limits.get(method)
    if limit is not None and limit.remaining > 0:
        limit.remaining -= 1
        return 429, _error("ratelimited"), {"Retry-After": str(limit.retry_after)}
    if method == "apps.connections.open":
        if token is None:
            return 200, _error("not_authed"), {}
        if token != ws.app_token:
            return 200, _error("invalid_auth"), {}
        return 200, {"ok": True, "url": issue_socket_url()}, {}
    handler = BOT_METHODS.get(method)
    if handler is None:
        return 200, _error("unknown_method"), {}
    if token is None:
        return 200, _error("not_authed"), {}
    if token.startswith("xapp-"):
        return 200, _error("not_allowed_token_type"), {}
    if token != ws.bot_token:
        return 200, _error("invalid_auth"), {}
    return 200, handler(ws, args), {}
