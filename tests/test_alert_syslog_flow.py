"""Seed story over real sockets: precursor lines by UDP and TCP raise a warning alert for the right host
before the loss line raises the critical page; the loss then inhibits the precursor alert."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.alerts.log_scan import HostIndex
from bot.alerts.patterns import load_rules
from bot.alerts.syslog import SyslogConfig, SyslogReceiver
from bot.model import AlertState, Severity
from tests.alert_harness import USB_HOST, alert_rig

ADDRESSED = replace(USB_HOST, address="127.0.0.1")
IN_DOUBT = (
    "<166>1 2024-03-02T10:15:00.118Z esx-usb-01 vmkwarning - - - cpu4:2097301)WARNING: NMP: "
    'nmp_DeviceRequestFastDeviceProbe:237: NMP device "mpx.vmhba32:C0:T0:L0" state in doubt; '
    "requested fast path state update..."
)
CANCELLED = (
    "<166>2024-03-02T10:15:01.523Z esx-usb-01 vmkernel: cpu2:2097155)NMP: nmp_ThrottleLogForDevice:3893: "
    'Cmd 0x2a (0x45b8c1c3a2c0, 0) to dev "mpx.vmhba32:C0:T0:L0" on path "vmhba32:C0:T0:L0" Failed: '
    "H:0x5 D:0x0 P:0x0 Cancelled from path layer. Act:NONE"
)
LOSS = (
    "<14>1 2024-03-02T10:15:04.000Z esx-usb-01 hostd 2099480 - - Event 412 : Issue detected on esx-usb-01 "
    "in ha-datacenter: Bootbank cannot be found at path '/bootbank'"
)


async def _until(check: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # type: ignore[misc]
            await asyncio.sleep(0.01)


async def test_precursor_by_udp_and_tcp_then_loss(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        index = HostIndex([ADDRESSED])
        config = SyslogConfig(udp_port=0, tcp_port=0)
        async with SyslogReceiver(config, load_rules(), index.resolve, rig.engine.ingest_log) as receiver:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(IN_DOUBT.encode(), receiver.addresses["udp"])

            async def precursor() -> object:
                return await rig.engine.alerts.open_for(USB_HOST.name, "boot-device-precursor")

            await _until(precursor)
            _, writer = await asyncio.open_connection(*receiver.addresses["tcp"])
            writer.write(CANCELLED.encode() + b"\n")
            await writer.drain()

            async def two_signals() -> bool:
                rec = await precursor()
                return rec is not None and rec.signal_count >= 2  # type: ignore[attr-defined]

            await _until(two_signals)
            rec = await rig.engine.alerts.open_for(USB_HOST.name, "boot-device-precursor")
            assert rec is not None and rec.severity is Severity.WARNING and rec.state is AlertState.PENDING
            assert any(s.startswith("syslog:udp") for s in rec.sources)
            assert any(s.startswith("syslog:tcp") for s in rec.sources)
            await rig.advance(30)
            [page] = rig.messages()
            assert "WARNING: esx-usb-01 shows trouble on its boot device" in page.reply.summary
            writer.write(LOSS.encode() + b"\n")
            await writer.drain()

            async def loss() -> object:
                return await rig.engine.alerts.open_for(USB_HOST.name, "bootbank-loss")

            await _until(loss)
            writer.close()
            await writer.wait_closed()
        await rig.advance(30)
        assert "CRITICAL: esx-usb-01 lost its bootbank" in rig.messages()[-1].reply.summary
        await rig.advance(600)
        muted = await rig.engine.alerts.open_for(USB_HOST.name, "boot-device-precursor")
        assert muted is not None and "inhibited" in ((await rig.engine.mute_view()).reason(muted) or "")
        assert not any("shows trouble" in m.reply.summary for m in rig.messages()[1:])
