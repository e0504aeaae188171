"""Alert storms on a fake clock and real SQLite: one page per (kind, cluster) group, edited as hosts
join and recover; one ack for the group; matcher silences that expire on time; inhibition rules as
data, replaced by a user file. Assertions are on what the chat rooms received."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.alerts.inhibition import InhibitRuleError, load_inhibit_rules, parse_inhibit_rules
from bot.alerts.intake import EngineConfig, Signal
from bot.messages import Reply, Table
from bot.model import AlertState, BootDevice, BootKind, Host
from tests.alert_harness import Rig, Sent, alert_rig
from tests.test_alert_engine import texts as block_texts

CONFIG = EngineConfig(
    pending_for=timedelta(seconds=30),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=1),
)


def usb_host(name: str, cluster: str, vcenter: str = "vc1") -> Host:
    return Host(
        name=name,
        build=17867351,
        version="7.0.2",
        release_name="ESXi 7.0 Update 2a",
        vcenter=vcenter,
        cluster=cluster,
        boot_device=BootDevice(BootKind.USB, "mpx.vmhba32:C0:T0:L0", "vmhba32", "vmkusb"),
    )


PROD_A = [f"esx{i:02d}.prod-a.lab" for i in range(1, 15)]
PROD_B = ["esx01.prod-b.lab"]
FLEET = {n: usb_host(n, "prod-a") for n in PROD_A} | {n: usb_host(n, "prod-b") for n in PROD_B}


def texts(reply: Reply) -> str:
    """Everything a person reads in a reply, the host table's rows included."""
    rows = [
        line
        for b in reply.blocks
        if isinstance(b, Table)
        for line in (b.title or "", *(" | ".join(row) for row in b.rows))
    ]
    return "\n".join([block_texts(reply), *rows])


def pages(rig: Rig) -> list[Sent]:
    return [m for m in rig.messages() if m.thread is None]


def lost(host: str) -> Signal:
    return Signal(host, "bootbank-loss", source="vcenter:vc1:state", detail="bootbank not mounted")


def back(host: str) -> Signal:
    return Signal(host, "bootbank-loss", clear=True, source="vcenter:vc1:state", detail="bootbank mounted")


def fix(host: Host) -> str | None:
    return "PR 2777003 in ESXi 7.0 Update 2c" if host.build == 17867351 else None


async def _lose(rig: Rig, hosts: list[str], every: float) -> None:
    for name in hosts:
        await rig.engine.ingest(lost(name))
        await rig.advance(every)


async def _wait(rig: Rig, seconds: float, step: float = 5.0) -> None:
    """Let time pass the way the engine's loop sees it: in small steps, each running what is due."""
    while seconds > 0:
        await rig.advance(min(step, seconds))
        seconds -= step


async def test_a_storm_is_one_page_edited_as_hosts_join_and_recover(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET, fix_hint=fix) as rig:
        await _lose(rig, PROD_A[:12], every=2)  # 12 hosts within a minute
        await _wait(rig, 60)
        [page] = rig.messages("matrix")
        [slack_page] = rig.messages("slack")
        first = texts(page.reply)
        assert first.startswith(
            "CRITICAL: bootbank lost on 12 hosts of cluster prod-a (ESXi 7.0 Update 2a, usb boot)"
            " — fix: PR 2777003 in ESXi 7.0 Update 2c (group g1)"
        )
        assert all(name in first for name in PROD_A[:12]) and PROD_A[12] not in first
        assert "@ann:example.org" in first and "<@U0ANN>" in texts(slack_page.reply)
        assert "ack g1" in first
        assert page.reply.data["group"]["key"] == "kind=bootbank-loss,cluster=prod-a"

        await _lose(rig, PROD_A[12:], every=1)  # 2 more join
        for name in PROD_A[:3]:  # 3 recover
            await rig.engine.ingest(back(name))
        await _wait(rig, 60)
        assert len(pages(rig)) == 1  # still one page
        now = texts(page.current)
        assert "bootbank lost on 11 hosts of cluster prod-a" in now and "11 of 14 hosts down" in now
        assert all(name in now for name in PROD_A)
        change = rig.messages()[-1]
        assert change.thread == page.message_id
        assert f"2 more hosts: {PROD_A[12]}, {PROD_A[13]}." in texts(change.reply)
        assert f"3 recovered: {', '.join(PROD_A[:3])}." in texts(change.reply)

        group = await rig.engine.ack_group(1, "matrix:@ann:example.org")
        await rig.deliver()
        assert group.state is AlertState.ACKNOWLEDGED
        members = await rig.engine.alerts.members(1)
        assert {m.state for m in members if m.is_open} == {AlertState.ACKNOWLEDGED}
        assert "ACKNOWLEDGED by matrix:@ann:example.org" in texts(page.current)
        before = len(rig.messages())
        await _wait(rig, 3600)  # past every escalation level and repeat: nothing more
        assert len(rig.messages()) == before

        for name in PROD_A[3:]:
            await rig.engine.ingest(back(name))
        await rig.deliver()
        assert texts(page.current).startswith("RESOLVED after")
        assert "condition cleared" in texts(rig.messages()[-1].reply)
        done = await rig.engine.groups.get(1)
        assert done is not None and done.state is AlertState.RESOLVED


async def test_without_an_ack_the_group_escalates_once_not_per_host(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET) as rig:
        await _lose(rig, PROD_A[:5], every=2)
        await _wait(rig, 60)
        await _wait(rig, 10 * 60)
        escalations = [m for m in rig.messages() if "escalating" in texts(m.reply)]
        assert len(escalations) == 1 and "@bob:example.org" in texts(escalations[0].reply)


async def test_acking_every_host_acks_the_group_and_one_host_alone_does_not(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET) as rig:
        await _lose(rig, PROD_A[:2], every=1)
        await _wait(rig, 60)
        one, two = await rig.engine.alerts.members(1)
        await rig.engine.ack(one.id, "slack:U0ANN")
        group = await rig.engine.groups.get(1)
        assert group is not None and group.state is AlertState.FIRING
        await rig.engine.ack(two.id, "slack:U0ANN")
        group = await rig.engine.groups.get(1)
        assert group is not None and group.state is AlertState.ACKNOWLEDGED


async def test_a_cluster_silence_mutes_exactly_its_hosts_and_expires_on_time(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET) as rig:
        await rig.engine.silence(
            {"cluster": ("prod-a",), "kind": ("bootbank-loss",)},
            timedelta(minutes=30),
            reason="replacing USB sticks",
            by="slack:U0ANN",
        )
        await _lose(rig, [*PROD_A[:3], *PROD_B], every=1)
        await _wait(rig, 60)
        [page] = pages(rig)
        assert "esx01.prod-b.lab lost its bootbank" in texts(page.reply)  # prod-b still pages
        muted = await rig.engine.alerts.open_for(PROD_A[0], "bootbank-loss")
        assert muted is not None and muted.group_id is None and "silence #1" in (muted.muted or "")
        await _wait(rig, 1800 - 64 - 1, step=60)
        assert len(pages(rig)) == 1  # 29:59: still silenced
        await _wait(rig, 1 + 30 + 5)  # the silence ends at 30:00; the new group waits group_wait
        assert len(pages(rig)) == 2
        assert "bootbank lost on 3 hosts of cluster prod-a" in texts(pages(rig)[1].reply)


async def test_a_silence_of_one_host_inside_a_group_shows_it_muted(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET) as rig:
        await _lose(rig, PROD_A[:3], every=1)
        await _wait(rig, 60)
        made = await rig.engine.silence({"host": ("esx01.*",)}, timedelta(hours=2), reason="", by="ann")
        await rig.advance(1)
        page = rig.messages()[0]
        assert "muted: silenced by ann" in texts(page.current)
        ended = await rig.engine.unsilence(made.id, "ann")
        assert ended is not None and await rig.engine.silences.active(rig.clock.now()) == []
        await _wait(rig, 60)
        assert "muted" not in texts(page.current)


async def test_bundled_rules_mute_a_vcenters_hosts_while_it_is_unreachable(tmp_path: Path) -> None:
    async with alert_rig(tmp_path, config=CONFIG, hosts=FLEET) as rig:
        await rig.engine.ingest(Signal("vc1", "vcenter-unreachable", labels=(("vcenter", "vc1"),)))
        await rig.engine.ingest(Signal(PROD_A[0], "host-not-responding"))
        await rig.advance(30)
        await rig.advance(30)
        [page] = pages(rig)
        assert "vc1 raised vcenter-unreachable" in texts(page.reply)
        held = await rig.engine.alerts.open_for(PROD_A[0], "host-not-responding")
        assert held is not None and "rule vcenter-unreachable-mutes-its-hosts" in (held.muted or "")


async def test_a_user_inhibition_rule_replaces_the_bundled_one(tmp_path: Path) -> None:
    user = tmp_path / "inhibit.yaml"
    user.write_text(
        "rules:\n"
        "  - id: bootbank-loss-mutes-its-symptoms\n"
        "    source: {kind: bootbank-loss}\n"
        "    target: {kind: boot-device-precursor}\n"
        "    equal: [host]\n"
    )
    host = PROD_A[0]
    for rules, pages_not_responding in ((None, False), (load_inhibit_rules([user]), True)):
        work = tmp_path / ("user" if rules else "bundled")
        work.mkdir()
        async with alert_rig(work, config=CONFIG, hosts=FLEET, inhibitions=rules) as rig:
            await rig.engine.ingest(lost(host))
            await rig.engine.ingest(Signal(host, "host-not-responding"))
            await rig.engine.ingest(Signal(host, "boot-device-precursor", device="mpx.vmhba32:C0:T0:L0"))
            await rig.advance(30)
            await rig.advance(30)
            shown = "\n".join(texts(m.reply) for m in pages(rig))
            assert "lost its bootbank" in shown
            assert ("is not responding" in shown) is pages_not_responding
            assert "trouble on its boot device" not in shown


def test_inhibit_rule_errors_name_the_file_and_rule() -> None:
    with pytest.raises(InhibitRuleError, match=r"f\.yaml rule #1 \(x\).*unknown label 'rack'"):
        parse_inhibit_rules("- {id: x, source: {rack: r1}, target: {}}", "f.yaml")
    with pytest.raises(InhibitRuleError, match="empty source"):
        parse_inhibit_rules("- {id: x, source: {}, target: {}}", "f.yaml")
    with pytest.raises(InhibitRuleError, match="unknown field"):
        parse_inhibit_rules("- {id: x, source: {kind: a}, target: {}, equl: [host]}", "f.yaml")
    with pytest.raises(InhibitRuleError, match="cannot read"):
        load_inhibit_rules([Path("/nonexistent/inhibit.yaml")])


async def test_group_by_host_pages_each_host_on_its_own(tmp_path: Path) -> None:
    config = EngineConfig(pending_for=timedelta(0), group_wait=timedelta(0), group_by=("host", "kind"))
    async with alert_rig(tmp_path, config=config, hosts=FLEET) as rig:
        await _lose(rig, PROD_A[:3], every=0)
        assert len(pages(rig)) == 3
