"""vCenter facts → signals: event rules (boot device only), state diffs, and the simulator driving the
alert engine (bootbank lost → page; restored → the page is edited to resolved)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.alerts.vcenter_signals import StateTracker, event_signals
from bot.builds import BuildCatalog
from bot.model import AlertState, BootDevice, BootKind, ConnectionState, Host
from bot.vsphere.client import VSphere
from bot.vsphere.events import VCenterEvent
from bot.vsphere.host_retrieval import release_lookup
from bot.vsphere.session import Endpoint
from tests.alert_harness import alert_rig
from tests.fixtures.vcsim import VcsimFactory

USB = Host("esx-usb-01", boot_device=BootDevice(BootKind.USB, "mpx.vmhba32:C0:T0:L0", "vmhba32"))


def test_event_rules_count_storage_trouble_only_on_the_boot_device() -> None:
    loss = VCenterEvent(
        7,
        "GeneralHostErrorEvent",
        "Issue detected on esx-usb-01: Bootbank cannot be found at path '/bootbank'",
    )
    [sig] = event_signals("vc1", loss, USB)
    assert sig.kind == "bootbank-loss" and not sig.clear and sig.source == "vcenter:vc1:event:7"
    apd_boot = VCenterEvent(
        8,
        "EventEx",
        "Device mpx.vmhba32:C0:T0:L0 has entered the All Paths Down state.",
        event_type_id="esx.problem.storage.apd.start",
    )
    [pre] = event_signals("vc1", apd_boot, USB)
    assert pre.kind == "boot-device-precursor" and pre.device == "mpx.vmhba32:C0:T0:L0"
    apd_san = replace(
        apd_boot, message="Device naa.60002ac0000000000000004a0001 has entered the All Paths Down state."
    )
    assert event_signals("vc1", apd_san, USB) == []
    back = VCenterEvent(9, "HostReconnectionEvent", "Host esx-usb-01 reconnected")
    [clear] = event_signals("vc1", back, USB)
    assert clear.kind == "host-not-responding" and clear.clear
    assert event_signals("vc1", VCenterEvent(10, "VmPoweredOnEvent", "VM on"), USB) == []


def test_state_tracker_reports_changes_and_clears_on_the_first_snapshot() -> None:
    tracker = StateTracker("vc1")
    healthy = replace(USB, bootbank_mounted=True, connection_state=ConnectionState.CONNECTED)
    first = tracker.update([healthy])
    assert {(s.kind, s.clear) for s in first} == {("bootbank-loss", True), ("host-not-responding", True)}
    assert tracker.update([healthy]) == []
    lost = replace(healthy, bootbank_mounted=False)
    [sig] = tracker.update([lost])
    assert sig.kind == "bootbank-loss" and not sig.clear and sig.device == "mpx.vmhba32:C0:T0:L0"
    [back] = tracker.update([healthy])
    assert back.clear


async def test_simulator_bootbank_loss_pages_its_cluster_group_and_restore_resolves(
    tmp_path: Path, vcsim_factory: VcsimFactory
) -> None:
    lab = vcsim_factory()
    vc = VSphere(
        Endpoint("vc1", lab.host, lab.user, lab.password, port=lab.port, timeout=5, ca_file=str(lab.ca_file)),
        release=release_lookup(BuildCatalog.bundled()),
        wait_seconds=1,
    )
    tracker = StateTracker("vc1")
    try:
        async with alert_rig(tmp_path) as rig:

            async def observe() -> None:
                for signal in tracker.update(await vc.refresh()):
                    await rig.engine.ingest(signal)

            await observe()
            lab.hook("bootbank-lost", host="esx-usb-01.lab.local")
            await observe()
            await rig.advance(30)
            [page] = [m for m in rig.messages() if m.thread is None]  # one page for both hosts
            assert "bootbank lost on 2 hosts (group g1)" in page.reply.summary  # the rig knows no clusters
            hosts = {h["host"]: h for h in page.reply.data["group"]["hosts"]}
            assert set(hosts) == {
                "esx-usb-01.lab.local",
                "esx-bootbank-03.lab.local",
            }  # 03: lost from the start
            lab.hook("bootbank-restored", host="esx-usb-01.lab.local")
            await observe()
            await rig.advance(60)  # the group's page shows changes every group_interval
            rec = await rig.engine.alerts.get(int(hosts["esx-usb-01.lab.local"]["alert"]))
            assert rec is not None and rec.state is AlertState.RESOLVED
            shown = {h["host"]: h["state"] for h in page.current.data["group"]["hosts"]}
            assert shown == {"esx-usb-01.lab.local": "recovered", "esx-bootbank-03.lab.local": "down"}
    finally:
        await vc.close()
