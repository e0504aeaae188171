"""Matrix wire shapes for the Matrix adapter: incoming events to commands, replies to event content.

Pure functions over raw event dicts, plus the one helper that turns matrix-nio's error responses into
exceptions (nio returns ``…Error`` objects instead of raising). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, TypeVar

from nio import ErrorResponse

from bot.chat.render_matrix import CONFIRM_REACTION, render
from bot.clock import from_epoch
from bot.messages import Reply
from bot.store.matrix_inbox import InboxItem

T = TypeVar("T")

# Every field of a foreign event is untrusted: a federated server can send any JSON it likes.
_MAX_ID = 255  # the spec's bound for user, room and event ids
_MAX_TS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z in milliseconds: datetime's last day

UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"  # noqa: S105 - an error code, not a secret
LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"


class BadEvent(ValueError):
    """A foreign event that breaks the spec's shape; the sync drops it, counts it and goes on."""


class MatrixError(Exception):
    """The homeserver refused a request; ``code`` is the Matrix ``errcode`` when there is one."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class MatrixRateLimited(MatrixError):
    """``M_LIMIT_EXCEEDED``: wait ``retry_after`` seconds before trying again."""


class MatrixFatal(MatrixError):
    """The bot cannot go on without a person: the access token is gone or the account is locked."""


def checked(response: T | ErrorResponse, what: str) -> T:
    """Return a successful nio response; raise the matching ``MatrixError`` for an error response."""
    if not isinstance(response, ErrorResponse):
        return response
    code = response.status_code
    detail = f"{what}: {code or 'error'} {response.message or ''}".strip()
    if code == UNKNOWN_TOKEN:
        raise MatrixFatal(
            f"{detail}. The homeserver no longer accepts the bot's access token: create a new one "
            "(log in again) and update matrix.access_token, or configure matrix.password.",
            code=code,
        )
    if code == "M_USER_LOCKED" or code == "M_USER_DEACTIVATED":
        raise MatrixFatal(f"{detail}. The bot's account cannot be used.", code=code)
    if code == LIMIT_EXCEEDED or code == "429":
        wait = (response.retry_after_ms or 1000) / 1000
        raise MatrixRateLimited(detail, code=LIMIT_EXCEEDED, retry_after=wait)
    raise MatrixError(detail, code=code)


def command_text(body: str, prefix: str, *, direct: bool) -> str | None:
    """The command inside ``body``, or None. In a DM the prefix is optional."""
    stripped = body.strip()
    head, _, rest = stripped.partition(" ")
    if head.lower() == prefix.lower():
        return rest.strip()
    if direct and stripped and not stripped.startswith("!"):
        return stripped
    return None


_EVENT_LISTS = ("timeline", "state", "ephemeral", "account_data", "invite_state")
_TOP_LISTS = ("account_data", "presence", "to_device")
_TEXT_FIELDS = ("type", "sender", "event_id", "state_key", "room_id")


def _screenable(event: object, room_event: bool) -> str | None:
    """Why nio could not take this event at all (it crashes on some shapes), or None.

    Every event needs a ``type`` and a ``content`` object; timeline and state events (``room_event``)
    also need their ``event_id``, ``sender`` and an ``origin_server_ts`` in range, as the spec says.
    """
    if not isinstance(event, dict):
        return f"not an object ({type(event).__name__})"
    required = ("type", "event_id", "sender") if room_event else ("type",)
    for name in _TEXT_FIELDS:
        if (name in event or name in required) and not isinstance(event.get(name), str):
            return f"{name} is missing or not text"
    ts = event.get("origin_server_ts", 0 if not room_event else None)
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= _MAX_TS:
        return f"origin_server_ts {str(ts)[:40]!r} is out of range"
    if not isinstance(event.get("content"), dict):
        return "content is missing or not an object"
    if "unsigned" in event and not isinstance(event["unsigned"], dict):
        return "unsigned is not an object"
    return None


def _screen_list(holder: object, key: str, where: str, dropped: list[str]) -> None:
    section = holder.get(key) if isinstance(holder, dict) else None
    events = section.get("events") if isinstance(section, dict) else None
    if not isinstance(events, list):
        return
    kept = []
    for event in events:
        why = _screenable(event, key in ("timeline", "state"))
        if why is None:
            kept.append(event)
        else:
            event_id = event.get("event_id") if isinstance(event, dict) else None
            dropped.append(f"{str(event_id)[:80]} in {where}: {why}")
    section["events"] = kept  # type: ignore[index]


def screen_sync(body: dict[str, Any]) -> list[str]:
    """Drop, in place, the events of a ``/sync`` answer that would stop the client from reading it.

    matrix-nio validates events one by one, but some shapes (a text ``origin_server_ts``, a non-object
    event) raise inside nio and lose the whole batch, so the same batch would fail forever. Returns
    one line per dropped event, for the log and the counter.
    """
    dropped: list[str] = []
    for key in _TOP_LISTS:
        _screen_list(body, key, "the sync", dropped)
    rooms = body.get("rooms")
    for membership in ("join", "invite", "leave"):
        section = rooms.get(membership) if isinstance(rooms, dict) else None
        for room_id, room in section.items() if isinstance(section, dict) else ():
            for key in _EVENT_LISTS:
                _screen_list(room, key, str(room_id)[:80], dropped)
    return dropped


def _identifier(value: object, sigil: str, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(sigil) or not 1 < len(value) <= _MAX_ID:
        raise BadEvent(f"{what} {str(value)[:80]!r} is not a Matrix id")
    return value


def _sent_at(event: dict[str, Any]) -> datetime:
    ts = event.get("origin_server_ts", 0)
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= _MAX_TS:
        raise BadEvent(f"origin_server_ts {str(ts)[:40]!r} is out of range")
    return from_epoch(ts / 1000)


_ANSWER = re.compile(r"(?i)(yes|no)\s+([a-z0-9]{4,20})")


def parse_event(event: dict[str, Any], room: str, *, me: str, prefix: str, direct: bool) -> InboxItem | None:
    """Keep what is addressed to the bot; drop our own events, notices, edits and anything else.

    A command's ``text`` is the command without its prefix; a reaction's is the reacted-to event id; an
    "answer" is ``yes <token>``/``no <token>`` typed without the prefix in a room.
    Raises ``BadEvent`` for an event whose fields break the spec (ids, timestamp, relation targets).
    """
    if not isinstance(event, dict):
        raise BadEvent(f"an event must be a JSON object, not {type(event).__name__}")
    content = event.get("content")
    if not isinstance(content, dict) or "state_key" in event:
        return None
    sender = _identifier(event.get("sender"), "@", "sender")
    event_id = _identifier(event.get("event_id"), "$", "event_id")
    if sender == me:
        return None
    sent_at = _sent_at(event)
    relation = content.get("m.relates_to")
    relates: dict[str, Any] = relation if isinstance(relation, dict) else {}
    if event.get("type") == "m.reaction":
        key = relates.get("key")
        if relates.get("rel_type") != "m.annotation" or not isinstance(key, str):
            return None
        if key.replace("\ufe0f", "") != CONFIRM_REACTION:
            return None
        target = _identifier(relates.get("event_id"), "$", "reaction target")
        return InboxItem(event_id, room, sender, "reaction", target, None, target, direct, sent_at)
    if event.get("type") != "m.room.message" or content.get("msgtype") != "m.text":
        return None  # m.notice is what bots send: never answer another bot
    if relates.get("rel_type") == "m.replace":
        return None  # an edit of a command does not run it again
    body = content.get("body")
    if not isinstance(body, str):
        return None
    thread = None
    if relates.get("rel_type") == "m.thread":
        thread = _identifier(relates.get("event_id"), "$", "thread root")
    text = command_text(body, prefix, direct=direct)
    if text is not None:
        return InboxItem(event_id, room, sender, "command", text, thread, event_id, direct, sent_at)
    answer = _ANSWER.fullmatch(body.strip())
    if answer is None:
        return None
    # ``yes <token>`` without the prefix: an answer only if it names a pending proposal in this room
    text = f"{answer.group(1).lower()} {answer.group(2).lower()}"
    return InboxItem(event_id, room, sender, "answer", text, thread, event_id, direct, sent_at)


def reply_content(
    reply: Reply, *, prefix: str, reply_to: str | None = None, thread: str | None = None
) -> dict[str, Any]:
    """An ``m.notice`` for ``reply``: in ``thread`` if given, else as a reply to ``reply_to``."""
    content = render(reply, prefix=prefix).content()
    if thread is not None:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": thread,
            "is_falling_back": reply_to is None or reply_to == thread,
            "m.in_reply_to": {"event_id": reply_to or thread},
        }
    elif reply_to is not None:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


def edit_content(reply: Reply, message_id: str, *, prefix: str) -> dict[str, Any]:
    """An ``m.replace`` edit of ``message_id``; clients without edits show the ``* `` fallback."""
    new = render(reply, prefix=prefix).content()
    return {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "format": new["format"],
        "formatted_body": f"* {new['formatted_body']}",
        "m.mentions": {},  # an edit pings nobody again
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": message_id},
    }


def transaction_id(*parts: str) -> str:
    """A stable Matrix transaction id: the homeserver answers a repeat with the first event, no copy."""
    return "esxbot-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
