"""The alert lifecycle of one host on a fake clock and real SQLite: ``for``, paging, escalation, ack,
resolve, silences, inhibition, restart and fencing. Assertions are on what each chat room received.
(Groups of many hosts: tests/test_alert_groups.py.)"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.alerts.intake import EngineConfig, Signal, signal_from_log
from bot.alerts.patterns import SignalKind
from bot.alerts.signals import LogSignal
from bot.messages import Actions, Fields, Text
from bot.model import AlertState, Severity
from tests.alert_harness import MATRIX_ROOM, USB_HOST, alert_rig

LOSS = Signal(
    USB_HOST.name,
    "bootbank-loss",
    source="vcenter:vc1:event:101",
    detail="Bootbank cannot be found at path '/bootbank'",
)
BACK = Signal(
    USB_HOST.name, "bootbank-loss", clear=True, source="vcenter:vc1:mount", detail="bootbank mounted"
)
PRECURSOR = Signal(
    USB_HOST.name,
    "boot-device-precursor",
    source="syslog:udp:10.0.0.5",
    detail='NMP device "mpx.vmhba32:C0:T0:L0" state in doubt',
    device="mpx.vmhba32:C0:T0:L0",
)


def texts(reply) -> str:  # type: ignore[no-untyped-def]
    out = [reply.summary]
    for block in reply.blocks:
        if isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Fields):
            out.extend(f"{k}: {v}" for k, v in block.items)
        elif isinstance(block, Actions):
            out.extend(b.command for b in block.buttons)
    return "\n".join(out)


def hint(host) -> str | None:  # type: ignore[no-untyped-def]
    return "PR 2777003 in ESXi 7.0 Update 2c fixes USB boot-device loss on 7.0 U2a"


async def test_a_flap_shorter_than_for_pages_nobody(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None and rec.state is AlertState.PENDING
        await rig.advance(10)
        await rig.engine.ingest(BACK)
        await rig.advance(3600)
        assert rig.messages("matrix") == [] and rig.messages("slack") == []
        done = await rig.engine.alerts.get(rec.id)
        assert done is not None and done.state is AlertState.RESOLVED and done.fired_at is None


async def test_firing_pages_every_subscribed_room_mentioning_on_call_with_fix(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, fix_hint=hint) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        assert await rig.advance(29) == 0
        assert rig.messages() == []
        assert await rig.advance(1) == 2  # the alert joins its group, the group pages
        [matrix_page] = rig.messages("matrix")
        [slack_page] = rig.messages("slack")
        body = texts(matrix_page.reply)
        assert "@ann:example.org" in body and "@bob" not in body
        assert "<@U0ANN>" in texts(slack_page.reply)
        assert "esx-usb-01 lost its bootbank" in body
        assert "usb (mpx.vmhba32:C0:T0:L0, vmhba32, vmkusb)" in body
        assert "ESXi 7.0 Update 2a" in body and "17867351" in body
        assert "PR 2777003 in ESXi 7.0 Update 2c" in body
        assert "persistent storage" in body
        assert "ack g1" in body and "shutdown esx-usb-01" in body
        state = await rig.engine.alerts.get(rec.id)
        assert state is not None and state.state is AlertState.FIRING


async def test_no_ack_mentions_the_next_level_then_repeats(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        await rig.engine.ingest(LOSS)
        await rig.advance(30)
        await rig.advance(9 * 60)
        assert len(rig.messages()) == 1
        await rig.advance(60)
        page, escalation = rig.messages()
        assert escalation.thread == page.message_id
        assert "@bob:example.org" in texts(escalation.reply) and "next level" in texts(escalation.reply)
        await rig.advance(30 * 60)
        repeat = rig.messages()[-1]
        assert "still firing" in texts(repeat.reply)
        assert "@ann:example.org" in texts(repeat.reply) and "@bob:example.org" in texts(repeat.reply)


async def test_ack_stops_escalation_and_edits_the_page(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        await rig.advance(30)
        await rig.engine.ack(rec.id, "matrix:@ann:example.org")
        await rig.deliver()
        page, ack_note = rig.messages()
        assert "ACKNOWLEDGED by matrix:@ann:example.org" in texts(page.current)
        assert "ack g1" not in texts(page.current)
        assert "acknowledged by" in texts(ack_note.reply)
        await rig.advance(60 * 60)
        assert len(rig.messages()) == 2  # no escalation, no repeat


async def test_an_ack_that_sits_too_long_fires_again(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        await rig.advance(30)
        await rig.engine.ack(rec.id, "slack:U0ANN")
        await rig.deliver()
        await rig.advance(2 * 3600)
        refire = rig.messages()[-1]
        assert "timed out" in texts(refire.reply) and "@ann:example.org" in texts(refire.reply)
        page = rig.messages()[0]
        assert texts(page.current).startswith("CRITICAL")
        state = await rig.engine.alerts.get(rec.id)
        assert state is not None and state.state is AlertState.FIRING and state.acked_by is None
        await rig.advance(10 * 60)
        assert "@bob:example.org" in texts(rig.messages()[-1].reply)


async def test_clearing_resolves_by_editing_the_page_and_replying_in_its_thread(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        await rig.engine.ingest(PRECURSOR)
        await rig.advance(30)
        await rig.advance(15 * 60)
        await rig.engine.ingest(BACK)
        await rig.deliver()
        page = rig.messages()[0]
        assert texts(page.current).startswith("RESOLVED after 15 min")
        assert not any(isinstance(b, Actions) for b in page.current.blocks)
        last = rig.messages()[-1]
        assert last.thread == page.message_id and "condition cleared" in texts(last.reply)
        assert await rig.engine.alerts.open_for_host(USB_HOST.name) == []  # the precursor cleared too
        before = len(rig.messages())
        await rig.advance(3 * 3600)
        assert len(rig.messages()) == before


async def test_a_silence_mutes_until_it_expires(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        await rig.engine.silence(
            {"host": (USB_HOST.name,)},
            timedelta(minutes=20),
            reason="replacing the USB stick",
            by="slack:U0ANN",
        )
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        await rig.advance(30)
        await rig.advance(15 * 60)
        assert rig.messages() == []
        muted = await rig.engine.alerts.get(rec.id)
        assert muted is not None and muted.muted and "silenced" in muted.muted
        await rig.advance(6 * 60)
        assert len(rig.messages()) == 1


async def test_unsilence_pages_at_once(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        await rig.engine.silence({"host": (USB_HOST.name,)}, timedelta(hours=8), reason="", by="slack:U0ANN")
        await rig.engine.ingest(LOSS)
        await rig.advance(30)
        assert rig.messages() == []
        assert await rig.engine.unsilence_host(USB_HOST.name, "slack:U0ANN") == 1
        await rig.advance(0)
        assert len(rig.messages()) == 1


async def test_bootbank_loss_inhibits_the_hosts_derived_alerts(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        await rig.engine.ingest(LOSS)
        await rig.engine.ingest(PRECURSOR)
        await rig.engine.ingest(Signal(USB_HOST.name, "host-not-responding", source="vcenter:vc1"))
        await rig.engine.ingest(Signal("esx-other", "host-not-responding", source="vcenter:vc1"))
        await rig.advance(30)
        pages = [texts(m.reply) for m in rig.messages()]
        assert len(pages) == 2
        assert any("esx-usb-01 lost its bootbank" in p for p in pages)
        assert any("esx-other is not responding" in p for p in pages)
        precursor = await rig.engine.alerts.open_for(USB_HOST.name, "boot-device-precursor")
        assert precursor is not None and precursor.muted and "inhibited by alert" in precursor.muted


async def test_restart_neither_pages_twice_nor_forgets_the_escalation(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        await rig.engine.ingest(LOSS)
        await rig.advance(30)
        assert len(rig.messages()) == 1
        rig.engine = rig.make_engine()  # the bot restarted: a new engine over the same database
        await rig.engine.ingest(LOSS)  # the source still reports the condition
        await rig.advance(5 * 60)
        assert len(rig.messages()) == 1
        await rig.advance(5 * 60)
        assert len(rig.messages()) == 2 and "@bob:example.org" in texts(rig.messages()[-1].reply)


async def test_a_stale_step_is_a_no_op(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        rec = await rig.engine.ingest(LOSS)
        assert rec is not None
        rig.clock.advance(30)
        old_leader = rig.make_engine()
        assert await rig.engine.run_step(rec.id, rec.version) is True  # joins its group
        assert await old_leader.run_step(rec.id, rec.version) is False  # same step from a stale read
        [group] = await rig.engine.groups.due(rig.clock.now().timestamp())
        view = await rig.engine.mute_view()
        assert await rig.engine.pager.step(group.id, group.version, view) is True  # pages
        assert await old_leader.pager.step(group.id, group.version, view) is False
        assert await rig.engine.tick() == 0
        await rig.deliver()
        assert len(rig.messages()) == 1 and len(rig.messages("slack")) == 1


async def test_log_signals_map_to_alert_kinds() -> None:
    base = LogSignal(
        host="esx-usb-01",
        kind=SignalKind.PRECURSOR,
        device="mpx.vmhba32:C0:T0:L0",
        time=None,
        line="state in doubt",
        rule="nmp-state-in-doubt",
        severity=Severity.WARNING,
        source="udp:10.0.0.5",
    )
    sig = signal_from_log(base)
    assert sig is not None and sig.kind == "boot-device-precursor" and sig.source == "syslog:udp:10.0.0.5"
    from dataclasses import replace

    recovered = signal_from_log(replace(base, kind=SignalKind.RECOVERY))
    assert recovered is not None and recovered.clear and recovered.kind == "bootbank-loss"
    assert signal_from_log(replace(base, host=None)) is None


async def test_engine_config_from_settings(caplog: pytest.LogCaptureFixture) -> None:
    cfg = EngineConfig.from_extra(
        {
            "for": "1m",
            "group_wait": "10s",
            "group_interval": "2m",
            "repeat_interval": "4h",
            "group_by": ["kind", "vcenter"],
            "forward_to": ["pagerduty:default"],
        }
    )
    assert cfg.pending_for == timedelta(minutes=1) and cfg.group_wait == timedelta(seconds=10)
    assert cfg.group_interval == timedelta(minutes=2) and cfg.repeat_interval == timedelta(hours=4)
    assert cfg.group_by == ("kind", "vcenter") and cfg.forward_to == ("pagerduty:default",)
    assert EngineConfig.from_extra(None) == EngineConfig()
    assert MATRIX_ROOM.startswith("matrix:")
    with caplog.at_level(logging.WARNING):
        old = EngineConfig.from_extra({"group_wait": "45s"})  # the key's meaning before groups
    assert old.pending_for == timedelta(seconds=45) and old.group_wait == EngineConfig().group_wait
    assert "rename it to 'for'" in caplog.text
    with pytest.raises(ValueError, match=r"alerts: group_by: unknown label 'rack'"):
        EngineConfig.from_extra({"group_by": ["kind", "rack"]})
    with pytest.raises(ValueError, match=r"alerts\.group_interval"):
        EngineConfig.from_extra({"group_interval": "soon"})
