"""Matrix wire shapes without a server: what counts as a command, error mapping, reply relations."""

from __future__ import annotations

from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse, SyncError

from bot.chat.matrix_events import (
    MatrixError,
    MatrixFatal,
    MatrixRateLimited,
    checked,
    command_text,
    edit_content,
    parse_event,
    reply_content,
    transaction_id,
)
from bot.messages import Reply

ME = "@esxbot:example.org"


def _message(
    body: str, *, msgtype: str = "m.text", sender: str = "@ann:example.org", **content: Any
) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": "$e1",
        "sender": sender,
        "origin_server_ts": 1_629_806_400_000,
        "content": {"msgtype": msgtype, "body": body, **content},
    }


def test_prefix_is_required_in_rooms_and_optional_in_direct_messages() -> None:
    assert command_text("!esx check esx-01", "!esx", direct=False) == "check esx-01"
    assert command_text("!ESX   help", "!esx", direct=False) == "help"
    assert command_text("!esxcheck", "!esx", direct=False) is None
    assert command_text("check esx-01", "!esx", direct=False) is None
    assert command_text("check esx-01", "!esx", direct=True) == "check esx-01"
    assert command_text("!other thing", "!esx", direct=True) is None


def test_commands_keep_their_thread_and_time() -> None:
    thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}
    item = parse_event(_message("!esx check esx-01", **thread), "!r", me=ME, prefix="!esx", direct=False)
    assert item is not None
    assert (item.kind, item.text, item.thread, item.reply_to) == ("command", "check esx-01", "$root", "$e1")
    assert item.sent_at.isoformat() == "2021-08-24T12:00:00+00:00"


@pytest.mark.parametrize(
    "event",
    [
        _message("!esx help", sender=ME),
        _message("!esx help", msgtype="m.notice"),
        _message("* !esx help", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}),
        {
            "type": "m.room.member",
            "state_key": "@ann:example.org",
            "sender": "@ann:example.org",
            "event_id": "$m",
            "content": {"membership": "join"},
        },
        {"type": "m.room.message", "sender": "@ann:example.org", "content": "not a dict", "event_id": "$b"},
        {
            "type": "m.reaction",
            "sender": "@ann:example.org",
            "event_id": "$r",
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$c", "key": "👍"}},
        },
    ],
)
def test_what_is_not_a_command(event: dict[str, Any]) -> None:
    assert parse_event(event, "!r", me=ME, prefix="!esx", direct=False) is None


def test_a_check_mark_reaction_points_at_the_confirm_message() -> None:
    event = {
        "type": "m.reaction",
        "sender": "@ann:example.org",
        "event_id": "$r",
        "origin_server_ts": 0,
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$confirm", "key": "✅\ufe0f"}},
    }
    item = parse_event(event, "!r", me=ME, prefix="!esx", direct=False)
    assert item is not None
    assert (item.kind, item.text, item.reply_to) == ("reaction", "$confirm", "$confirm")


def test_nio_error_responses_become_exceptions() -> None:
    ok = RoomSendResponse("$ok", "!r")
    assert checked(ok, "send") is ok
    with pytest.raises(MatrixRateLimited) as limited:
        checked(RoomSendError("slow down", "M_LIMIT_EXCEEDED", retry_after_ms=1500), "send")
    assert limited.value.retry_after == 1.5
    with pytest.raises(MatrixFatal, match="access token"):
        checked(SyncError("gone", "M_UNKNOWN_TOKEN"), "sync")
    with pytest.raises(MatrixError) as forbidden:
        checked(RoomSendError("not in room", "M_FORBIDDEN"), "send")
    assert forbidden.value.code == "M_FORBIDDEN"
    assert not isinstance(forbidden.value, MatrixFatal | MatrixRateLimited)


def test_thread_reply_and_edit_relations() -> None:
    reply = Reply.text("working")
    threaded = reply_content(reply, prefix="!esx", reply_to="$cmd", thread="$cmd")
    assert threaded["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$cmd",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$cmd"},
    }
    assert reply_content(reply, prefix="!esx", reply_to="$cmd")["m.relates_to"] == {
        "m.in_reply_to": {"event_id": "$cmd"}
    }
    edit = edit_content(Reply.text("done"), "$msg", prefix="!esx")
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$msg"}
    assert edit["m.new_content"]["body"] == "done"
    assert edit["body"] == "* done"


def test_transaction_ids_are_stable_and_distinct() -> None:
    assert transaction_id("reply", "$a") == transaction_id("reply", "$a")
    assert transaction_id("reply", "$a") != transaction_id("reply", "$b")
