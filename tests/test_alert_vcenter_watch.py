"""The vCenter alert watcher against vcsimlab and the real engine (recording chat rooms, real clock):
a flap shorter than `for` pages nobody; a kill and restart over the same database neither pages
twice nor loses the escalation, and an event raised while the bot was down is still alerted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.messages import Reply
from bot.model import AlertState
from bot.vsphere.eventfeed import EventFeed, event_from_data
from bot.vsphere.soap import Data
from tests.alert_harness import MATRIX_ROOM, RecordingAdapter
from tests.fixtures.vcsim import VcsimFactory
from tests.vcenter_alert_lab import BOOT_DEVICE, MODEL, USB_HOST, USB_HOST_2, AlertStack, oncall

ANN, BOB = "@ann:example.org", "@bob:example.org"


class Room(RecordingAdapter):
    """The harness's recording adapter, also taking the outbox's idempotency ``key``."""

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        return await super().send(room, reply, thread=thread)


def _data(type_: str, **fields: object) -> Data:
    data = Data(type_)
    data.update(fields)
    return data


def test_feed_keeps_only_newer_events_in_key_order_and_starts_after_history() -> None:
    arg = _data("HostEventArgument", name="esx1")
    page = [
        _data(
            "EventEx",
            key="12",
            eventTypeId="esx.problem.storage.apd.start",
            host=arg,
            fullFormattedMessage="m",
        ),
        _data("GeneralHostErrorEvent", key="11", host=arg, fullFormattedMessage="Bootbank cannot be found"),
        _data("EventEx", fullFormattedMessage="no key: skipped"),
    ]
    resumed = EventFeed(after=10)
    resumed.take_page(page)
    drained = resumed.drain()
    assert drained is not None
    events, last = drained
    assert [(e.key, e.type, e.host) for e in events] == [
        (11, "GeneralHostErrorEvent", "esx1"),
        (12, "EventEx", "esx1"),
    ]
    assert events[1].event_type_id == "esx.problem.storage.apd.start" and last == 12
    assert resumed.drain() is None
    resumed.take_page(page)  # the same page again (a new session): nothing new
    assert resumed.drain() is None

    first_ever = EventFeed(after=None)
    first_ever.new_session()
    first_ever.take_page(page)
    assert first_ever.drain() == ([], 12)
    assert event_from_data("not an event") is None

    reset = EventFeed(after=500)  # vCenter's history was reset: begin after its newest event
    reset.new_session()
    reset.take_page(page)
    assert reset.drain() == ([], 12)


async def test_flap_shorter_than_for_pages_nobody(tmp_path: Path, vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory(model=MODEL)
    room = Room("matrix")
    stack = AlertStack(
        lab, tmp_path / "a.db", (MATRIX_ROOM,), {"matrix": room}, oncall(ANN, BOB), pending_for=3.0
    )
    await stack.start()
    try:
        assert stack.engine is not None
        lab.hook("bootbank-lost", host=USB_HOST)
        await stack.until(lambda: stack.watcher is not None and stack.watcher.stats().signals >= 8)
        rec = await stack.engine.alerts.open_for(USB_HOST, "bootbank-loss")
        assert rec is not None and rec.state is AlertState.PENDING
        await asyncio.sleep(0.6)
        lab.hook("bootbank-restored", host=USB_HOST)
        engine = stack.engine

        async def resolved() -> bool:
            after = await engine.alerts.get(rec.id)
            return after is not None and after.state is AlertState.RESOLVED

        await stack.until_async(resolved)
        # nothing left to do later: no step is scheduled and nothing was queued, so nobody is paged
        assert await engine.alerts.open_for(USB_HOST, "bootbank-loss") is None
        assert await engine.alerts.next_due_at() is None
        assert stack.db is not None and await stack.db.fetchall("SELECT id FROM outbox") == []
        assert room.sent == []
    finally:
        await stack.kill()


async def test_kill_and_restart_neither_pages_twice_nor_loses_escalation_or_events(
    tmp_path: Path, vcsim_factory: VcsimFactory
) -> None:
    lab = vcsim_factory(model=MODEL)
    room = Room("matrix")
    stack = AlertStack(lab, tmp_path / "a.db", (MATRIX_ROOM,), {"matrix": room}, oncall(ANN, BOB, after="4s"))
    await stack.start()
    try:
        lab.hook("bootbank-lost", host=USB_HOST)
        await stack.until(lambda: len(room.sent) == 1)
        page = room.sent[0]
        assert "esx-usb-01.lab.local lost its bootbank" in page.reply.summary
        body = str(page.reply)
        assert ANN in body and BOB not in body
        await stack.kill()  # firing, next level due in ~4 s

        lab.hook(
            "event",
            host=USB_HOST_2,
            type="esx.problem.storage.apd.start",
            message=f"Device {BOOT_DEVICE} has entered the All Paths Down state.",
        )
        lab.hook(
            "event",
            host=USB_HOST,
            type="esx.problem.storage.apd.start",
            message="Device naa.60002ac0000000000000004a0001 has entered the All Paths Down state.",
        )
        await asyncio.sleep(0.5)
        await stack.start()
        assert stack.resumed_after is not None and stack.resumed_after > 0
        await stack.until(lambda: any(BOB in str(s.reply) for s in room.sent), timeout=10)
        escalation = next(s for s in room.sent if BOB in str(s.reply))
        assert escalation.thread == page.message_id
        await stack.until(lambda: any("esx-usb-02.lab.local" in s.reply.summary for s in room.sent))
        pages = [s for s in room.sent if s.thread is None]
        assert len(pages) == 2
        assert pages[0] is page and pages[1].reply.summary.startswith(f"WARNING: {USB_HOST_2} shows trouble")
        assert stack.engine is not None
        assert await stack.engine.alerts.open_for(USB_HOST, "boot-device-precursor") is None  # the SAN LUN
        assert (await stack.engine.alerts.open_for(USB_HOST, "bootbank-loss")) is not None
        assert len([s for s in room.sent if s.thread is None and USB_HOST in s.reply.summary]) == 1
    finally:
        await stack.kill()


async def test_a_restarted_vcenter_gets_a_new_collector_and_its_events_still_alert(
    tmp_path: Path, vcsim_factory: VcsimFactory
) -> None:
    lab = vcsim_factory(model=MODEL)
    room = Room("matrix")
    stack = AlertStack(lab, tmp_path / "a.db", (MATRIX_ROOM,), {"matrix": room}, oncall(ANN, BOB))
    await stack.start()
    try:
        assert stack.vc is not None
        lab.stop()
        await stack.until(lambda: stack.vc is not None and not stack.vc.status().connected, timeout=15)
        seen = stack.watcher.stats().snapshots if stack.watcher else 0
        lab.start()  # a fresh simulator: same hosts, its event keys start again from 1
        # the reconnect's full retrieval, then the new watch's first answer (collector in place)
        await stack.until(
            lambda: stack.watcher is not None and stack.watcher.stats().snapshots >= seen + 2, 20
        )
        lab.hook(
            "event",
            host=USB_HOST_2,
            type="esx.problem.storage.connectivity.lost",
            message=f"Lost connectivity to storage device {BOOT_DEVICE}. Path vmhba32:C0:T0:L0 is down.",
        )
        await stack.until(lambda: len(room.sent) == 1, timeout=10)
        assert room.sent[0].reply.summary.startswith(f"WARNING: {USB_HOST_2} shows trouble")
    finally:
        await stack.kill()
