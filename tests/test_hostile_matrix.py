"""A hostile homeserver against the real Matrix adapter: forged events are dropped, the sync goes on.

A federated server can put anything into an event: ``origin_server_ts`` 2**53-1, ids without their
sigil, relation targets that are numbers. Each such event is dropped with a log line and a count;
the valid command in the same batch is still answered and ``next_batch`` still advances.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.fake_homeserver import ANN, ROOM, fake_homeserver, joined, message, running_adapter
from tests.fixtures.matrix_bot import ask, room_with_bot, running_bot
from tests.fixtures.synapse import SynapseServer, person

FORGED = [
    message("$ts", ANN, "!esx forged-ts", origin_server_ts=9007199254740991),
    message("$neg", ANN, "!esx forged-negative", origin_server_ts=-1),
    message("$float", ANN, "!esx forged-float", origin_server_ts=1.5e300),
    message("$text", ANN, "!esx forged-text-ts", origin_server_ts="soon"),  # nio itself would crash
    {"type": "m.room.message", "event_id": "$bare", "sender": ANN, "origin_server_ts": 1},  # no content
    message("no-sigil", ANN, "!esx forged-id"),
    message("$sender", "ann-without-sigil", "!esx forged-sender"),
    message("$long", "@" + "a" * 300 + ":evil.test", "!esx forged-long-sender"),
    message(
        "$thread",
        ANN,
        "!esx forged-thread",
        content={
            "msgtype": "m.text",
            "body": "!esx x",
            "m.relates_to": {"rel_type": "m.thread", "event_id": 42},
        },
    ),
    {
        "type": "m.reaction",
        "event_id": "$react",
        "sender": ANN,
        "origin_server_ts": 1,
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": ["$x"], "key": "✅"}},
    },
]


async def test_forged_events_are_dropped_and_the_valid_command_in_the_batch_is_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with fake_homeserver() as server, running_adapter(server, tmp_path) as adapter:
        server.script(joined(ROOM, [*FORGED, message("$good", ANN, "!esx help")]))
        await server.wait_sent(1)
        server.script(joined(ROOM, [message("$next", ANN, "!esx status")]))
        await server.wait_sent(2)
        assert adapter.health().connected
    bodies = [content["body"] for _, content in server.sent]
    assert bodies == ["pong help", "pong status"]
    assert adapter.dropped_events == len(FORGED)
    assert "origin_server_ts '9007199254740991' is out of range" in caplog.text
    batches = [s for s in server.since if s is not None]
    assert batches[:3] == ["s1", "s2", "s3"]  # next_batch advanced past the hostile batch


async def test_a_two_member_room_is_not_a_direct_message_and_allowed_rooms_hold_for_all(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with person(synapse_server, synapse_server.human) as ann:
        allowed = await ann.create_room(invite=(bot_id,))
        async with running_bot(synapse_server, tmp_path / "a.db", allowed_rooms=(allowed,)):
            await ann.wait_for_join(allowed, bot_id)
            stranger_room = await room_with_bot(ann, bot_id)  # two members, not in allowed_rooms
            dm = await room_with_bot(ann, bot_id, direct=True)  # a DM, not in allowed_rooms either
            mark = len(ann.events)
            await ann.say(stranger_room, "!esx help")
            await ann.say(dm, "!esx help")
            answered = await ask(ann, allowed, "!esx help", bot_id)  # a full round trip later …
            assert "check" in answered["content"]["body"]
            await asyncio.sleep(0.5)
        unwanted = [r for r, e in ann.events[mark:] if e.get("sender") == bot_id and r != allowed]
        assert unwanted == []  # … nothing was said outside the allowed room

        async with running_bot(synapse_server, tmp_path / "b.db"):
            pair = await room_with_bot(ann, bot_id)
            dm = await room_with_bot(ann, bot_id, direct=True)
            mark = len(ann.events)
            await ann.say(pair, "help")  # no prefix: only a DM may leave it out
            in_dm = await ask(ann, dm, "help", bot_id)
            assert "check" in in_dm["content"]["body"]
            await asyncio.sleep(0.5)
        assert [r for r, e in ann.events[mark:] if e.get("sender") == bot_id] == [dm]


async def test_echoed_text_cannot_ping_the_room(synapse_server: SynapseServer, tmp_path: Path) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        reply = await ask(ann, room, f"!esx @room {synapse_server.human.user_id}", bot_id)
    assert "@room" in reply["content"]["body"]  # the text is echoed …
    assert reply["content"]["m.mentions"] == {}  # … but the bot means to notify nobody
