"""The Matrix adapter end to end against a real Synapse: commands, DMs, confirmations, refusals."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from bot.chat.render_matrix import HTML_FORMAT
from bot.messages import Reply
from tests.fixtures.matrix_bot import HOST, ask, room_with_bot, running_bot
from tests.fixtures.synapse import SynapseServer, person


def _token(message: dict[str, Any]) -> str:
    found = re.search(r"yes ([a-z0-9]{8})", message["content"]["body"])
    assert found, message["content"]["body"]
    return found.group(1)


async def test_check_is_answered_with_an_html_notice_replying_to_the_command(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        mark = len(ann.events)
        command_id = await ann.say(room, f"!esx check {HOST}")
        reply = await ann.wait_for_message(room, bot_id, after=mark)
    content = reply["content"]
    assert content["msgtype"] == "m.notice"
    assert content["format"] == HTML_FORMAT
    assert HOST in content["body"]
    assert f"<strong>{HOST}</strong>" in content["formatted_body"] or HOST in content["formatted_body"]
    assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == command_id


async def test_help_in_a_direct_message_with_and_without_prefix(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        dm = await room_with_bot(ann, bot_id, direct=True)
        with_prefix = await ask(ann, dm, "!esx help", bot_id)
        without_prefix = await ask(ann, dm, "help", bot_id)
    for reply in (with_prefix, without_prefix):
        assert reply["content"]["msgtype"] == "m.notice"
        assert "check" in reply["content"]["body"]


async def test_confirm_by_reaction_and_by_typed_token(synapse_server: SynapseServer, tmp_path: Path) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        proposal = await ask(ann, room, f"!esx bounce {HOST}", bot_id)
        assert "React ✅ or type `!esx yes" in proposal["content"]["body"]
        mark = len(ann.events)
        await ann.react(room, proposal["event_id"])
        done = await ann.wait_for_message(room, bot_id, after=mark)
        assert f"Bouncing {HOST}" in done["content"]["body"]
        assert done["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == proposal["event_id"]

        second = await ask(ann, room, "!esx bounce esx02.lab.local", bot_id)
        typed = await ask(ann, room, f"!esx yes {_token(second)}", bot_id)
        assert "Bouncing esx02.lab.local" in typed["content"]["body"]
        again = await ask(ann, room, f"!esx yes {_token(second)}", bot_id)
        assert "Bouncing" not in again["content"]["body"]


async def test_a_user_who_is_not_allowed_is_refused_audited_and_cannot_invite(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    mallory = synapse_server.register("mallory")
    async with (
        running_bot(synapse_server, tmp_path / "bot.db") as bot,
        person(synapse_server, synapse_server.human) as ann,
        person(synapse_server, mallory) as mal,
    ):
        room = await room_with_bot(ann, bot_id)
        await ann.invite(room, mallory.user_id)
        await mal.wait_for(lambda r, e: r == room and e["type"] == "esxbot.test.invite")
        await mal.join(room)
        refused = await ask(mal, room, f"!esx check {HOST}", bot_id)
        assert "not on this bot's list" in refused["content"]["body"]
        audit = await bot.app.services.store.audit.recent(5, user_id=f"matrix:{mallory.user_id}")
        assert [(a.outcome, a.detail) for a in audit] == [("denied", "not in matrix.allowed_users")]

        own_room = await mal.create_room(invite=(bot_id,))
        followup = await ask(ann, room, "!esx help", bot_id)  # a full sync round trip later …
        assert followup["content"]["msgtype"] == "m.notice"
        assert own_room not in bot.adapter._client.rooms  # … the bot has not joined mallory's room


async def test_own_messages_notices_and_edits_are_not_commands(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        mark = len(ann.events)
        await ann.say(room, "!esx help", msgtype="m.notice")
        edited = await ann.say(room, "!esx hosts")
        await ann.wait_for_message(room, bot_id, after=mark)
        edit = {
            "msgtype": "m.text",
            "body": "* !esx help",
            "m.new_content": {"msgtype": "m.text", "body": "!esx help"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": edited},
        }
        await ann.send_event(room, "m.room.message", edit)
        last = await ask(ann, room, f"!esx check {HOST}", bot_id)
        await asyncio.sleep(0.3)
    replies = [
        e
        for r, e in ann.events[mark:]
        if r == room and e["sender"] == bot_id and e["type"] == "m.room.message"
    ]
    targets = [e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] for e in replies]
    assert targets == [edited, last["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]]


async def test_outbox_side_send_in_thread_and_edit_in_place(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db") as bot,
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        root = await ann.say(room, "patch window starts")
        first = await bot.adapter.send(room, Reply.text("patching esx01: 1/3"), thread=root)
        await bot.adapter.edit(room, first, Reply.text("patching esx01: 3/3 done"))
        shown = await ann.wait_for(lambda r, e: r == room and e.get("event_id") == first)
        edit = await ann.wait_for(
            lambda r, e: r == room and e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
        )
    assert shown["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert shown["content"]["m.relates_to"]["event_id"] == root
    assert edit["content"]["m.relates_to"]["event_id"] == first
    assert edit["content"]["m.new_content"]["body"] == "patching esx01: 3/3 done"
    assert edit["content"]["m.new_content"]["msgtype"] == "m.notice"
