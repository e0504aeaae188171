"""Encrypted rooms over a real Synapse: the bot cannot read them, so it says so in the room and leaves.

A group room created encrypted, a DM created encrypted, and a room that turns encrypted after the bot
joined: each gets one notice a person can read, and the bot is gone from the room.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.matrix_bot import running_bot
from tests.fixtures.matrix_raw import RawPerson, raw_person
from tests.fixtures.synapse import SynapseServer


def _left(ann: RawPerson, room: str, bot_id: str) -> bool:
    return any(
        r == room
        and e.get("type") == "m.room.member"
        and e.get("state_key") == bot_id
        and e.get("content", {}).get("membership") == "leave"
        for r, e in ann.events
    )


@pytest.mark.parametrize("how", ["room", "dm", "turns-encrypted"])
async def test_the_bot_says_it_cannot_read_an_encrypted_room_and_leaves(
    synapse_server: SynapseServer, tmp_path: Path, how: str
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        raw_person(synapse_server, synapse_server.human) as ann,
    ):
        room = await ann.create_room(invite=(bot_id,), direct=how == "dm", encrypted=how != "turns-encrypted")
        await ann.wait_for_join(room, bot_id)
        if how == "turns-encrypted":
            await ann.call(
                "PUT",
                f"/rooms/{room}/state/m.room.encryption/",
                {"algorithm": "m.megolm.v1.aes-sha2"},
            )
        await ann.wait_until(lambda: _left(ann, room, bot_id))
    notes = [m for m in ann.screen(room) if m.sender == bot_id]
    assert len(notes) == 1 and "end-to-end encrypted" in notes[0].body and notes[0].msgtype == "m.notice"
