"""End to end: vcsimlab bootbank loss → vCenter watcher → alert engine → outbox → Matrix adapter → a
person's client on a real Synapse. The page mentions the on-call user and says which release fixes it;
without an ack the next level is mentioned; ``ack`` stops the repeats; re-mounting the bootbank
resolves the alert and the page is edited in place."""

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
from tests.vcenter_alert_lab import FIX_HINT, MODEL, USB_HOST, AlertStack, oncall

NEXT_LEVEL = f"@bob-oncall:{SERVER_NAME}"


async def _ignore(command: Command) -> Reply:
    return Reply.text("this test bot takes no commands")


def _from_bot(bot_id: str, room: str) -> Any:
    def matches(r: str, event: Mapping[str, Any]) -> bool:
        return r == room and event.get("type") == "m.room.message" and event.get("sender") == bot_id

    return matches


def _body(event: Mapping[str, Any]) -> str:
    content = event.get("content", {})
    return str(content.get("m.new_content", content).get("body", ""))


def _thread_of(event: Mapping[str, Any]) -> str | None:
    relates = event.get("content", {}).get("m.relates_to", {})
    return relates.get("event_id") if relates.get("rel_type") == "m.thread" else None


def _edit_of(event: Mapping[str, Any]) -> str | None:
    relates = event.get("content", {}).get("m.relates_to", {})
    return relates.get("event_id") if relates.get("rel_type") == "m.replace" else None


async def _next(ann: MatrixPerson, bot_id: str, room: str, mark: int, timeout: float = 15) -> tuple[int, Any]:
    """The next bot message in ``room`` after index ``mark``, and the index after it."""
    event = await ann.wait_for(_from_bot(bot_id, room), after=mark, timeout=timeout)
    return next(i for i, (_r, e) in enumerate(ann.events) if e is event) + 1, event


async def test_bootbank_loss_pages_escalates_acks_and_resolves_in_a_matrix_room(
    synapse_server: SynapseServer, vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory(model=MODEL)
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
        oncall(human, NEXT_LEVEL, after="2s", repeat="3s"),
        on_db=with_matrix,
    )
    await stack.start()
    try:
        async with person(synapse_server, synapse_server.human) as ann:
            await stack.until(lambda: adapters["matrix"].health().connected, timeout=20)
            room = await room_with_bot(ann, bot_id)
            assert stack.db is not None and stack.engine is not None
            await SubscriptionRepo(stack.db).add(f"matrix:{room}", "alerts", by=human, at=SystemClock().now())
            mark = len(ann.events)

            lab.hook("bootbank-lost", host=USB_HOST)
            mark, page = await _next(ann, bot_id, room, mark)
            body = _body(page)
            assert f"{USB_HOST} lost its bootbank" in body
            assert human in body and NEXT_LEVEL not in body  # the on-call user, by MXID
            assert page["content"]["m.mentions"] == {"user_ids": [human]}  # exactly whom it pings
            assert FIX_HINT in body  # the fix recommendation
            assert "mpx.vmhba32:C0:T0:L0" in body

            mark, escalation = await _next(ann, bot_id, room, mark, timeout=10)
            assert _thread_of(escalation) == page["event_id"]
            assert NEXT_LEVEL in _body(escalation) and "escalating" in _body(escalation)
            assert escalation["content"]["m.mentions"] == {"user_ids": [NEXT_LEVEL]}

            [rec] = [
                r for r in await stack.engine.alerts.listing(include_resolved=False) if r.host == USB_HOST
            ]
            await stack.engine.ack(rec.id, by="ann")
            acked: list[Any] = []
            while len(acked) < 2:  # the page edited to "acknowledged" and a note in its thread
                mark, event = await _next(ann, bot_id, room, mark)
                acked.append(event)
            assert any(_edit_of(e) == page["event_id"] for e in acked)
            assert any(_thread_of(e) == page["event_id"] and "acknowledged by ann" in _body(e) for e in acked)
            # an acknowledged alert stays quiet: its group's next step is the 2 h ack timeout, not the
            # 3 s repeat, and nothing is left in the outbox to deliver
            acked_rec = await stack.engine.alerts.get(rec.id)
            assert acked_rec is not None and acked_rec.state is AlertState.ACKNOWLEDGED
            assert acked_rec.group_id is not None
            group = await stack.engine.groups.get(acked_rec.group_id)
            assert group is not None and group.next_step_at is not None
            assert group.next_step_at - SystemClock().now().timestamp() > 3600
            db = stack.db

            async def delivered() -> bool:
                return (
                    db is not None and await db.fetchall("SELECT id FROM outbox WHERE sent_at IS NULL") == []
                )

            await stack.until_async(delivered)

            lab.hook("bootbank-restored", host=USB_HOST)
            resolved: list[Any] = []
            while not any(_edit_of(e) == page["event_id"] and "RESOLVED" in _body(e) for e in resolved):
                mark, event = await _next(ann, bot_id, room, mark)
                resolved.append(event)
            after = await stack.engine.alerts.get(rec.id)
            assert after is not None and after.state is AlertState.RESOLVED
    finally:
        for task in adapter_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stack.kill()
