"""A hostile syslog sender against the real receiver and alert engine, over real loopback sockets.

Linux answers on all of 127.0.0.0/8, so the attacker (127.0.0.1), the real ESXi host (127.0.0.2) and a
relay (127.0.0.3) are three distinct source addresses here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.alerts.log_scan import HostIndex
from bot.alerts.patterns import load_rules
from bot.alerts.signals import LogSignal
from bot.alerts.syslog import SyslogConfig, SyslogReceiver
from bot.config import ConfigError, Settings
from bot.runtime.sections import read_sections
from tests.alert_harness import USB_HOST, alert_rig

ATTACKER, ESX, RELAY = "127.0.0.1", "127.0.0.2", "127.0.0.3"
HOST = replace(USB_HOST, address=ESX)
LOSS = (
    "<14>1 2024-03-02T10:15:04.000Z {host} hostd 2099480 - - Event 412 : Issue detected on {host} in "
    "ha-datacenter: Bootbank cannot be found at path '/bootbank'"
)
BASE = SyslogConfig(udp_port=0, tcp_port=0, trusted_relays=(f"{RELAY}/32",))


def _udp_from(source: str, target: tuple[str, int], payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        for payload in payloads:
            sock.sendto(payload, target)


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


async def test_forged_lines_open_no_alert_and_page_nobody(tmp_path: Path) -> None:
    async with alert_rig(tmp_path) as rig:
        index = HostIndex([HOST])
        async with SyslogReceiver(BASE, load_rules(), index.resolve, rig.engine.ingest_log) as receiver:
            target = receiver.addresses["udp"]
            _udp_from(ATTACKER, target, [LOSS.format(host=HOST.name).encode()])
            _udp_from(ATTACKER, target, [LOSS.format(host=f"esx-invented-{n}").encode() for n in range(20)])
            _udp_from(ESX, target, [LOSS.format(host="esx-other-99").encode()])  # a host speaks for itself
            await _until(lambda: receiver.stats().unmapped == 21 and receiver.stats().signals == 1)
            await _until(lambda: receiver.stats().parsed == 22)
            _udp_from(ESX, target, [LOSS.format(host=HOST.name).encode()])
            await _until(lambda: receiver.stats().signals == 2)
            await asyncio.sleep(0.05)
        await rig.advance(30)
        alert = await rig.engine.alerts.open_for(HOST.name, "bootbank-loss")
        assert alert is not None and alert.signal_count == 2
        assert all(s.endswith(f"udp:{ESX}") for s in alert.sources)
        assert len(rig.messages()) == 1  # one page, for the real host, from its own address


async def test_a_host_cannot_speak_for_another_host_but_a_relay_can() -> None:
    other = replace(HOST, name="esx-usb-02", address="127.0.0.9")
    seen: list[LogSignal] = []

    async def sink(signal: LogSignal) -> None:
        seen.append(signal)

    index = HostIndex([HOST, other])
    async with SyslogReceiver(BASE, load_rules(), index.resolve, sink) as receiver:
        target = receiver.addresses["udp"]
        _udp_from(ESX, target, [LOSS.format(host="esx-usb-02").encode()])
        await _until(lambda: receiver.stats().forged == 1)
        _udp_from(
            RELAY, target, [LOSS.format(host="esx-usb-02").encode(), LOSS.format(host="nobody").encode()]
        )
        await _until(lambda: len(seen) == 1 and receiver.stats().unmapped == 1)
    assert [(s.host, s.source) for s in seen] == [("esx-usb-02", f"udp:{RELAY}")]


async def test_one_source_holding_connections_does_not_lock_out_a_real_sender() -> None:
    seen: list[LogSignal] = []

    async def sink(signal: LogSignal) -> None:
        seen.append(signal)

    config = replace(BASE, max_connections=8, max_connections_per_source=4, first_line_timeout=0.5)
    async with SyslogReceiver(config, load_rules(), HostIndex([HOST]).resolve, sink) as receiver:
        address = receiver.addresses["tcp"]
        hoard = []
        for source in (ATTACKER, ATTACKER, "127.0.0.4", "127.0.0.5"):
            for _ in range(6):
                hoard.append(await asyncio.open_connection(*address, local_addr=(source, 0)))
        await _until(lambda: receiver.stats().connections == 8)
        assert receiver.stats().connections_rejected >= 12  # over the per-source cap
        _, writer = await asyncio.open_connection(*address, local_addr=(ESX, 0))
        writer.write(LOSS.format(host=HOST.name).encode() + b"\n")
        await writer.drain()
        await _until(lambda: len(seen) == 1)
        assert receiver.stats().connections_displaced >= 1
        # connections that never sent a complete line are closed soon; the real sender's stays
        await _until(lambda: receiver.stats().connections == 1, timeout=5)
        writer.close()
        for _, hoarded in hoard:
            hoarded.close()
    assert seen[0].host == HOST.name


def test_trusted_relays_and_limits_are_read_from_the_syslog_section() -> None:
    section = {"udp_port": 0, "trusted_relays": ["10.1.0.0/16", "192.0.2.7"], "max_connections_per_source": 4}
    config = read_sections(Settings(extra={"syslog": section})).syslog
    assert config is not None
    assert config.trusted_relays == ("10.1.0.0/16", "192.0.2.7/32")
    assert config.max_connections_per_source == 4
    with pytest.raises(ConfigError, match="'evil' is not an address or network"):
        read_sections(Settings(extra={"syslog": {"trusted_relays": ["evil"]}}))
    one = read_sections(Settings(extra={"syslog": {"trusted_relays": "10.0.0.1"}})).syslog
    assert one is not None and one.trusted_relays == ("10.0.0.1/32",)  # one address is a list of one
    assert read_sections(Settings(extra={"syslog": {"rule_files": ["mine.yaml"], "udp_port": 0}})).syslog
