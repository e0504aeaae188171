"""A bootbank-loss storm end to end: vcsimlab (14 USB-booted hosts in cluster prod-a, one in prod-b)
→ vCenter watcher → alert engine → outbox → Matrix adapter → a person's client on a real Synapse.

12 hosts of prod-a lose their bootbank at once: one page names the 12; 2 more join and 3 recover and
the same page is edited; one ``ack g1`` acknowledges every host and no escalation follows; the group
resolves when the last host remounts. A prod-b host pages on its own page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.chat.matrix import MatrixAdapter
from bot.clock import SystemClock
from bot.config import MatrixSettings, Secret
from bot.messages import Command, Reply
from bot.model import AlertState
from bot.store.sql.sqlite import SqliteDatabase
from bot.store.subscriptions import SubscriptionRepo
from tests.fixtures.matrix_bot import room_with_bot
from tests.fixtures.synapse import SERVER_NAME, MatrixPerson, SynapseServer, person
from tests.fixtures.vcsim import VcsimFactory
from tests.test_alert_matrix_page import _body, _edit_of, _from_bot, _thread_of
from tests.vcenter_alert_lab import FIX_HINT, MODEL, AlertStack, oncall

NEXT_LEVEL = f"@bob-oncall:{SERVER_NAME}"
PROD_A = [f"esx{i:02d}.prod-a.lab" for i in range(1, 15)]
PROD_B = "esx01.prod-b.lab"
STORM_MODEL: dict[str, Any] = {
    **MODEL,
    "clusters": 2,
    "hosts_per_cluster": 14,
    "cluster_names": ["prod-a", "prod-b"],
    "hosts": [{"name": name} for name in [*PROD_A, PROD_B]],
}


async def _ignore(command: Command) -> Reply:
    return Reply.text("this test bot takes no commands")


async def _until_event(
    ann: MatrixPerson, bot_id: str, room: str, mark: int, want: Any, timeout: float = 20
) -> tuple[int, Any]:
    """The first bot message after ``mark`` that ``want`` accepts, and the index after it."""
    async with asyncio.timeout(timeout):
        while True:
            event = await ann.wait_for(_from_bot(bot_id, room), after=mark, timeout=timeout)
            mark = next(i for i, (_r, e) in enumerate(ann.events) if e is event) + 1
            if want(event):
                return mark, event


def _pages(ann: MatrixPerson, bot_id: str, room: str) -> list[Any]:
    return [
        e
        for r, e in ann.events
        if r == room
        and e.get("sender") == bot_id
        and e.get("type") == "m.room.message"
        and _edit_of(e) is None
        and _thread_of(e) is None
    ]


async def test_a_storm_of_bootbank_losses_is_one_page_edited_acked_once_and_resolved(
    synapse_server: SynapseServer, vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory(model=STORM_MODEL)
    human = synapse_server.human.user_id
    bot_id = synapse_server.bot.user_id
    settings = MatrixSettings(
        homeserver=synapse_server.base_url,
        user_id=bot_id,
        access_token=Secret(synapse_server.bot.access_token),
        allowed_users=(human,),
    )
    adapter_task: list[asyncio.Task[None]] = []
    adapters: dict[str, MatrixAdapter] = {}

    async def with_matrix(db: SqliteDatabase) -> Mapping[str, Any]:
        adapters["matrix"] = MatrixAdapter(settings, db, sync_timeout=5)
        adapter_task.append(asyncio.create_task(adapters["matrix"].run(_ignore)))
        return adapters

    stack = AlertStack(
        lab,
        tmp_path / "bot.db",
        (),
        {},
        oncall(human, NEXT_LEVEL, after="3s", repeat="3s"),
        on_db=with_matrix,
        group_wait=3.0,
        group_interval=1.0,
    )
    await stack.start()
    try:
        async with person(synapse_server, synapse_server.human) as ann:
            await stack.until(lambda: adapters["matrix"].health().connected, timeout=20)
            room = await room_with_bot(ann, bot_id)
            assert stack.db is not None and stack.engine is not None
            await SubscriptionRepo(stack.db).add(f"matrix:{room}", "alerts", by=human, at=SystemClock().now())
            mark = len(ann.events)

            for name in PROD_A[:12]:
                await asyncio.to_thread(lab.hook, "bootbank-lost", host=name)
            mark, page = await _until_event(ann, bot_id, room, mark, lambda e: _edit_of(e) is None)
            body = _body(page)
            assert "bootbank lost on 12 hosts of cluster prod-a" in body, body
            assert "12 of 12 hosts down" in body and all(name in body for name in PROD_A[:12])
            assert FIX_HINT in body and human in body and NEXT_LEVEL not in body
            assert "ack g1" in body

            for name in PROD_A[12:]:
                await asyncio.to_thread(lab.hook, "bootbank-lost", host=name)
            for name in PROD_A[:3]:
                await asyncio.to_thread(lab.hook, "bootbank-restored", host=name)
            mark, edited = await _until_event(
                ann, bot_id, room, mark, lambda e: _edit_of(e) == page["event_id"] and "11 of 14" in _body(e)
            )
            assert "bootbank lost on 11 hosts of cluster prod-a" in _body(edited)
            assert all(name in _body(edited) for name in PROD_A)

            group = await stack.engine.ack_group(1, "ann")
            assert group.state is AlertState.ACKNOWLEDGED
            members = await stack.engine.alerts.members(1)
            assert len(members) == 14
            assert {m.state for m in members if m.is_open} == {AlertState.ACKNOWLEDGED}
            mark, _ = await _until_event(
                ann,
                bot_id,
                room,
                mark,
                lambda e: _thread_of(e) == page["event_id"] and "acknowledged by ann" in _body(e),
            )
            await asyncio.sleep(4.0)  # past the 3 s escalation and repeat: an acknowledged group stays quiet
            quiet = [e for r, e in ann.events[mark:] if r == room and e.get("sender") == bot_id]
            assert not [e for e in quiet if "escalating" in _body(e) or "still firing" in _body(e)]

            await asyncio.to_thread(lab.hook, "bootbank-lost", host=PROD_B)  # another cluster: its own page
            mark, other = await _until_event(ann, bot_id, room, mark, lambda e: PROD_B in _body(e))
            assert _edit_of(other) is None and f"{PROD_B} lost its bootbank" in _body(other)

            for name in PROD_A[3:]:
                await asyncio.to_thread(lab.hook, "bootbank-restored", host=name)
            mark, _ = await _until_event(
                ann, bot_id, room, mark, lambda e: _edit_of(e) == page["event_id"] and "RESOLVED" in _body(e)
            )
            done = await stack.engine.groups.get(1)
            assert done is not None and done.state is AlertState.RESOLVED
            assert len(_pages(ann, bot_id, room)) == 2  # the prod-a storm and the prod-b host
    finally:
        for task in adapter_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stack.kill()
