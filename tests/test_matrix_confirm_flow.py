"""A host-changing command over a real Synapse, seen by a person through raw client-server calls.

Command → preview → ✅ (or typed ``yes <token>``, with and without the prefix) → "job started" →
the job card in the thread, edited in place as steps run → the final message; in a group room and in
a DM. The bot runs real jobs against the vCenter simulator, so the job card really is edited.
The earlier confirmation tests used a command that answered at once and posted nothing in a thread,
so a reply threaded on the reaction event (which Synapse refuses) went unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.matrix_bot import running_bot
from tests.fixtures.matrix_raw import RawPerson, Shown, raw_person
from tests.fixtures.synapse import SynapseServer
from tests.fixtures.vcsim import VcsimFactory

# each case its own hosts: both cases running against one simulator state must not meet a shut-down host
_ROOM_HOSTS = ("DC0_C1_H0", "DC0_C1_H1", "esx-disk-02.lab.local")
_DM_HOSTS = ("DC0_C1_H2", "DC0_C1_H3", "esx-usb-01.lab.local")


def _token(message: Shown) -> str:
    found = re.search(r"yes ([a-z0-9]{8})", message.body)
    assert found, message.body
    return found.group(1)


async def _bot_message(ann: RawPerson, room: str, bot_id: str, after: int, needle: str) -> Shown:
    def found() -> Shown | None:
        return next((m for m in ann.screen(room)[after:] if m.sender == bot_id and needle in m.body), None)

    shown: Shown = await ann.wait_until(found)
    return shown


async def _job_to_the_end(ann: RawPerson, room: str, bot_id: str, start: int, started: Shown) -> None:
    """The job's card and final message are in the thread of the "started" message, as a person sees them."""
    thread = started.thread
    assert thread is not None, started

    def finished() -> list[Shown]:
        mine = [m for m in ann.screen(room)[start:] if m.sender == bot_id and m.thread == thread]
        done = [m for m in mine if "succeeded" in m.body and m.edits == 0 and m.event_id != started.event_id]
        cards = [m for m in mine if m.edits > 0]
        return mine if done and cards and "succeeded" in cards[0].body else []

    mine: list[Shown] = await ann.wait_until(finished, timeout=60)
    card = next(m for m in mine if m.edits > 0)
    assert card.edits >= 3, card  # one edit per step at least: the card moved in place
    assert "shutdown-host" in card.body and "running" not in card.body.split("requested by")[0]
    assert all(m.msgtype == "m.notice" for m in mine)


@pytest.mark.parametrize("direct", [False, True], ids=["room", "dm"])
async def test_reaction_and_typed_answers_run_the_job_and_the_person_sees_it_through(
    synapse_server: SynapseServer, vcsim_factory: VcsimFactory, tmp_path: Path, direct: bool
) -> None:
    lab = vcsim_factory()
    bot_id = synapse_server.bot.user_id
    prefix = "" if direct else "!esx "
    async with (
        running_bot(synapse_server, tmp_path / "bot.db", vcenter=lab),
        raw_person(synapse_server, synapse_server.human) as ann,
    ):
        room = await ann.create_room(invite=(bot_id,), direct=direct)
        await ann.wait_for_join(room, bot_id)
        mine = _DM_HOSTS if direct else _ROOM_HOSTS
        answers = [("react", mine[0]), (f"{prefix}yes", mine[1]), ("yes", mine[2])]
        for answer, host in answers:
            start = len(ann.screen(room))
            command = await ann.say(
                room, f"!esx shutdown {host} --vm-policy power-off --override cluster-maintenance"
            )
            preview = await _bot_message(ann, room, bot_id, start, "yes ")
            assert preview.reply_to == command
            assert "React ✅" in preview.body and "!esx yes" in preview.body
            assert "<code>" in (preview.html or "") and "`" not in (preview.html or "")
            if answer == "react":
                await ann.react(room, preview.event_id)
            else:
                await ann.say(room, f"{answer} {_token(preview)}")
            started = await _bot_message(ann, room, bot_id, start, "started")
            await _job_to_the_end(ann, room, bot_id, start, started)
        errors = [m for m in ann.screen(room) if m.sender == bot_id and "❌" in m.body]
        assert errors == []
