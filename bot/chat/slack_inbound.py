"""Slack payloads in, ``Incoming`` values out: slash commands, mentions, DMs and button clicks.

Pure functions over the JSON Slack sends (the same in Socket Mode and HTTP mode), so the adapter's
listeners stay thin. Each ``Incoming`` carries a dedupe key that is stable across Slack's redeliveries
in both transports: ``event_id`` for Events API payloads, ``trigger_id`` for slash commands and clicks
(Socket Mode's ``envelope_id`` does not exist in HTTP mode, and a redelivered envelope repeats the
payload, trigger id included). Text arrives in Slack's markup: entities are decoded and links unwrapped
so ``check <http://esx-01.lab|esx-01.lab>`` reads ``check esx-01.lab``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.clock import from_epoch

_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]*)(?:\|([^>]*))?>")


class Kind(StrEnum):
    SLASH = "slash"
    MENTION = "mention"
    DM = "dm"
    CLICK = "click"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One command-bearing Slack payload, transport details removed."""

    kind: Kind
    key: str  # dedupe key: event_id or trigger_id
    user_id: str
    channel: str
    text: str
    direct: bool
    message_ts: str | None = None  # the user's message, or for clicks the message holding the button
    thread_ts: str | None = None  # the thread that message lives in
    sent_at: datetime | None = None
    user_name: str | None = None
    block_id: str | None = None  # clicks: the actions block that was clicked
    message_text: str = ""  # clicks: the clicked message's fallback text
    message_blocks: tuple[Mapping[str, Any], ...] = ()  # clicks: the clicked message's blocks
    response_url: str | None = None  # slash commands and clicks: answers here work without membership


def plain_text(text: str, bot_user_id: str | None) -> str:
    """Slack's markup to what the user typed: no bot mention, links unwrapped, entities decoded."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:").removeprefix("tel:"), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _epoch(value: Any) -> datetime | None:
    try:
        return from_epoch(float(value))
    except (TypeError, ValueError):
        return None


def from_slash(body: Mapping[str, Any]) -> Incoming | None:
    user, channel, trigger = body.get("user_id"), body.get("channel_id"), body.get("trigger_id")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(trigger, str)):
        return None
    return Incoming(
        kind=Kind.SLASH,
        key=f"trigger:{trigger}",
        user_id=user,
        channel=channel,
        text=plain_text(str(body.get("text") or ""), None) or "help",
        direct=channel.startswith("D"),
        user_name=body.get("user_name") if isinstance(body.get("user_name"), str) else None,
        response_url=_url(body.get("response_url")),
    )


def from_event(body: Mapping[str, Any], bot_user_id: str | None) -> Incoming | None:
    """An ``app_mention`` or a direct message to the bot; None for anything else (edits, bots, ourselves)."""
    event = body.get("event")
    event_id = body.get("event_id")
    if not isinstance(event, Mapping) or not isinstance(event_id, str):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    if event.get("subtype") or event.get("bot_id") or user == bot_user_id:
        return None
    if event.get("type") == "app_mention":
        kind = Kind.MENTION
    elif event.get("type") == "message" and event.get("channel_type") == "im":
        kind = Kind.DM
    else:
        return None
    text = plain_text(str(event.get("text") or ""), bot_user_id)
    if kind is Kind.DM:
        text = re.sub(r"^/?esx\b\s*", "", text)
    thread = event.get("thread_ts")
    return Incoming(
        kind=kind,
        key=f"event:{event_id}",
        user_id=user,
        channel=channel,
        text=text or "help",
        direct=kind is Kind.DM or channel.startswith("D"),
        message_ts=ts,
        thread_ts=thread if isinstance(thread, str) else None,
        sent_at=_epoch(ts),
    )


def from_action(body: Mapping[str, Any]) -> Incoming | None:
    """A click on one of our buttons: the command its ``value`` carries, as the clicking user."""
    actions, user, trigger = body.get("actions"), body.get("user"), body.get("trigger_id")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}  # absent when the clicked message was ephemeral
    if not (isinstance(actions, list) and actions and isinstance(user, Mapping) and isinstance(trigger, str)):
        return None
    action = actions[0]
    value, user_id = action.get("value"), user.get("id")
    if not (
        isinstance(value, str) and value.strip() and isinstance(user_id, str) and isinstance(channel, str)
    ):
        return None
    blocks = message.get("blocks")
    thread = message.get("thread_ts")
    return Incoming(
        kind=Kind.CLICK,
        key=f"trigger:{trigger}",
        user_id=user_id,
        channel=channel,
        text=value.strip(),
        direct=channel.startswith("D"),
        message_ts=message.get("ts") if isinstance(message.get("ts"), str) else None,
        thread_ts=thread if isinstance(thread, str) else None,
        sent_at=_epoch(action.get("action_ts")),
        user_name=user.get("username") if isinstance(user.get("username"), str) else None,
        block_id=action.get("block_id") if isinstance(action.get("block_id"), str) else None,
        message_text=str(message.get("text") or ""),
        message_blocks=tuple(b for b in blocks if isinstance(b, Mapping)) if isinstance(blocks, list) else (),
        response_url=_url(body.get("response_url")),
    )
