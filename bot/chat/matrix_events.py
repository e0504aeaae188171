"""Matrix wire shapes for the Matrix adapter: incoming events to commands, replies to event content.

Pure functions over raw event dicts, plus the one helper that turns matrix-nio's error responses into
exceptions (nio returns ``…Error`` objects instead of raising). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TypeVar

from nio import ErrorResponse

from bot.chat.render_matrix import CONFIRM_REACTION, render
from bot.clock import from_epoch
from bot.messages import Reply
from bot.store.matrix_inbox import InboxItem

T = TypeVar("T")

UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"  # noqa: S105 - an error code, not a secret
LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"


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


_ANSWER = re.compile(r"(?i)(yes|no)\s+([a-z0-9]{4,20})")


def parse_event(event: dict[str, Any], room: str, *, me: str, prefix: str, direct: bool) -> InboxItem | None:
    """Keep what is addressed to the bot; drop our own events, notices, edits and anything else.

    A command's ``text`` is the command without its prefix; a reaction's is the reacted-to event id; an
    "answer" is ``yes <token>``/``no <token>`` typed without the prefix in a room.
    """
    sender = event.get("sender")
    event_id = event.get("event_id")
    content = event.get("content")
    if not isinstance(sender, str) or not isinstance(event_id, str) or not isinstance(content, dict):
        return None
    if sender == me or "state_key" in event:
        return None
    sent_at = from_epoch(float(event.get("origin_server_ts", 0)) / 1000)
    relation = content.get("m.relates_to")
    relates: dict[str, Any] = relation if isinstance(relation, dict) else {}
    if event.get("type") == "m.reaction":
        key = str(relates.get("key", "")).replace("\ufe0f", "")
        target = relates.get("event_id")
        if (
            relates.get("rel_type") != "m.annotation"
            or key != CONFIRM_REACTION
            or not isinstance(target, str)
        ):
            return None
        return InboxItem(event_id, room, sender, "reaction", target, None, target, direct, sent_at)
    if event.get("type") != "m.room.message" or content.get("msgtype") != "m.text":
        return None  # m.notice is what bots send: never answer another bot
    if relates.get("rel_type") == "m.replace":
        return None  # an edit of a command does not run it again
    body = content.get("body")
    if not isinstance(body, str):
        return None
    thread = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
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
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": message_id},
    }


def transaction_id(*parts: str) -> str:
    """A stable Matrix transaction id: the homeserver answers a repeat with the first event, no copy."""
    return "esxbot-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
