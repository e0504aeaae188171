"""One failed message must not hold a room: real Synapse, real outbox loop, a person's raw view.

A job card threaded on a reaction event is refused by Synapse for good; its later edits are posted as
a new message instead of retrying against a message that does not exist, and a page queued behind
them reaches the room as fast as a page to a clean room. A message that keeps failing (here: to a
room the bot is not in) is retried on its own budget while the next rows go out, and ``outbox``
lists it with its error.
"""

from __future__ import annotations

import time
from pathlib import Path

from bot.messages import Reply
from tests.fixtures.bot import ADMIN, OPERATOR, TestBot
from tests.fixtures.matrix_bot import running_bot
from tests.fixtures.matrix_raw import RawPerson, Shown, raw_person
from tests.fixtures.synapse import SynapseServer


async def _seen(ann: RawPerson, room: str, bot_id: str, needle: str) -> tuple[Shown, float]:
    def found() -> Shown | None:
        return next((m for m in ann.screen(room) if m.sender == bot_id and needle in m.body), None)

    shown: Shown = await ann.wait_until(found, timeout=20)
    return shown, time.monotonic()


async def test_a_failed_card_neither_blocks_the_room_nor_loses_its_updates(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db") as bot,
        raw_person(synapse_server, synapse_server.human) as ann,
    ):
        clean = await ann.create_room(invite=(bot_id,))
        room = await ann.create_room(invite=(bot_id,))
        await ann.wait_for_join(clean, bot_id)
        await ann.wait_for_join(room, bot_id)
        outbox = bot.app.outbox

        queued = time.monotonic()
        await outbox.enqueue(f"matrix:{clean}", Reply.text("page 0: baseline"), key="page-0")
        _, arrived = await _seen(ann, clean, bot_id, "page 0")
        baseline = arrived - queued

        reaction = await ann.react(room, await ann.say(room, "some message"))
        await outbox.enqueue(f"matrix:{room}", Reply.text("card: step 1/3"), thread=reaction, key="card")
        await outbox.enqueue(f"matrix:{room}", Reply.text("card: step 2/3"), key="card/1", edit_of="card")
        await outbox.enqueue(f"matrix:{room}", Reply.text("card: done"), key="card/2", edit_of="card")
        queued = time.monotonic()
        await outbox.enqueue(f"matrix:{room}", Reply.text("page 1: esx02 lost its bootbank"), key="page-1")
        _, arrived = await _seen(ann, room, bot_id, "page 1")
        latency = arrived - queued
        card, _ = await _seen(ann, room, bot_id, "card: done")

        await outbox.enqueue("matrix:!nowhere:esxbot.test", Reply.text("lost"), key="nowhere")
        queued = time.monotonic()
        await outbox.enqueue(f"matrix:{room}", Reply.text("page 2: after the stuck one"), key="page-2")
        _, arrived = await _seen(ann, room, bot_id, "page 2")
        later = arrived - queued

        troubled = await bot.app.services.store.outbox.troubled()

    assert latency < baseline + 2.0, (latency, baseline)
    assert later < baseline + 2.0, (later, baseline)
    assert card.thread is None and card.edits >= 0  # posted as a new message, then edited in place
    by_room = {t.conversation: t for t in troubled}
    assert by_room[f"matrix:{room}"].state == "failed", troubled
    assert "relation" in by_room[f"matrix:{room}"].error
    assert "matrix:!nowhere:esxbot.test" in by_room, troubled  # retrying or failed, listed with its error
    assert by_room["matrix:!nowhere:esxbot.test"].error


async def test_outbox_lists_retrying_and_failed_rows_for_admins(bot: TestBot) -> None:
    repo = bot.app.services.store.outbox
    for key in ("a", "b"):
        await bot.app.outbox.enqueue("slack:C1", Reply.text(key), key=key)
    first, second = [int(r["id"]) for r in await bot.app.db.fetchall("SELECT id FROM outbox ORDER BY id")]
    await repo.mark_failed(first, "channel_not_found")
    await repo.mark_retry(second, "HTTP 500", bot.clock.now().timestamp() + 60)
    shown = await bot.say("outbox", as_user=ADMIN)
    assert shown.summary == "1 failed for good, 1 retrying (newest first)"
    assert "channel_not_found" in str(shown.blocks) and "HTTP 500" in str(shown.blocks)
    refused = await bot.say("outbox", as_user=OPERATOR)
    assert not refused.ok
