"""The syslog receiver over real UDP, TCP and TLS sockets on 127.0.0.1: signals, framings, abuse."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.alerts.framing import Framer
from bot.alerts.log_scan import HostIndex
from bot.alerts.patterns import SignalKind, load_rules
from bot.alerts.signals import LogSignal
from bot.alerts.syslog import SyslogConfig, SyslogReceiver
from bot.model import BootDevice, BootKind, Host, Severity
from tests.fixtures.absent import server_absent

USB = "mpx.vmhba32:C0:T0:L0"
HOSTS = [
    Host(
        name="esx-usb-01.lab.example",
        boot_device=BootDevice(BootKind.USB, USB, "vmhba32"),
        address="127.0.0.1",
    ),
    Host(
        name="esx-san-01.lab.example",
        boot_device=BootDevice(BootKind.SAN, "naa.60002ac0000000000000004a0001"),
    ),
]
IN_DOUBT = (
    "<166>1 2024-03-02T10:15:00.118Z {host} vmkwarning - - - cpu4:2097301)WARNING: NMP: "
    'nmp_DeviceRequestFastDeviceProbe:237: NMP device "{dev}" state in doubt; '
    "requested fast path state update..."
)
CANCELLED = (
    "<166>2024-03-02T10:15:01.523Z {host} vmkernel: cpu2:2097155)NMP: nmp_ThrottleLogForDevice:3893: "
    'Cmd 0x2a (0x45b8c1c3a2c0, 0) to dev "{dev}" on path "vmhba32:C0:T0:L0" Failed: H:0x5 D:0x0 P:0x0 '
    "Cancelled from path layer. Act:NONE"
)
LOSS = (
    "<14>1 2024-03-02T10:15:04.000Z {host} hostd 2099480 - - Event 412 : Issue detected on {host} in "
    "ha-datacenter: Bootbank cannot be found at path '/bootbank'"
)
NOISE = "<166>1 2024-03-02T10:15:00.500Z esx-usb-01.lab.example vmkernel - - - cpu1:2097152)Ordinary line {n}"
BASE = SyslogConfig(udp_port=0, tcp_port=0, rate=1e9, burst=1e9, idle_timeout=60.0)


class Harness:
    def __init__(self) -> None:
        self.signals: list[LogSignal] = []
        self.index = HostIndex(HOSTS)

    async def sink(self, signal: LogSignal) -> None:
        self.signals.append(signal)

    def receiver(self, config: SyslogConfig = BASE, **kwargs: Callable[[], float]) -> SyslogReceiver:
        return SyslogReceiver(config, load_rules(), self.index.resolve, self.sink, **kwargs)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    yield Harness()


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def _udp_send(address: tuple[str, int], payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for payload in payloads:
            sock.sendto(payload, address)


async def _tcp_send(address: tuple[str, int], chunks: list[bytes]) -> None:
    _, writer = await asyncio.open_connection(*address)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def _octet(line: str) -> bytes:
    data = line.encode()
    return str(len(data)).encode() + b" " + data


async def test_udp_seed_precursors_then_loss_for_the_right_host(harness: Harness) -> None:
    async with harness.receiver() as receiver:
        lines = [
            IN_DOUBT.format(host="esx-usb-01.lab.example", dev=USB),
            IN_DOUBT.format(host="esx-san-01.lab.example", dev="naa.60002ac0000000000000004a00019d4e"),
            CANCELLED.format(host="esx-usb-01.lab.example", dev=USB),
            LOSS.format(host="esx-usb-01.lab.example"),
        ]
        _udp_send(receiver.addresses["udp"], [line.encode() + b"\n" for line in lines])
        await _until(lambda: len(harness.signals) >= 3)
        stats = receiver.stats()
    assert [(s.host, s.kind, s.severity, s.device) for s in harness.signals] == [
        ("esx-usb-01.lab.example", SignalKind.PRECURSOR, Severity.WARNING, USB),
        ("esx-usb-01.lab.example", SignalKind.PRECURSOR, Severity.WARNING, USB),
        ("esx-usb-01.lab.example", SignalKind.LOSS, Severity.CRITICAL, None),
    ]
    assert harness.signals[0].source == "udp:127.0.0.1"
    assert harness.signals[0].rule == "nmp-state-in-doubt"
    assert (stats.received, stats.parsed, stats.signals, stats.unmapped) == (4, 4, 3, 0)


async def test_source_address_maps_a_line_without_hostname(harness: Harness) -> None:
    async with harness.receiver() as receiver:
        _udp_send(receiver.addresses["udp"], [IN_DOUBT.format(host="-", dev=USB).encode()])
        await _until(lambda: len(harness.signals) == 1)
    assert harness.signals[0].host == "esx-usb-01.lab.example"


async def test_a_source_that_is_no_inventory_host_is_counted_and_dropped(harness: Harness) -> None:
    harness.index = HostIndex(HOSTS[1:])  # nobody at 127.0.0.1
    async with harness.receiver() as receiver:
        _udp_send(receiver.addresses["udp"], [IN_DOUBT.format(host="esx-new-09", dev=USB).encode()])
        await _until(lambda: receiver.stats().unmapped == 1)
    assert harness.signals == []


async def test_tcp_both_framings_mixed_and_split_anywhere(harness: Harness) -> None:
    stream = b"".join(
        [
            _octet(IN_DOUBT.format(host="esx-usb-01.lab.example", dev=USB)),
            NOISE.format(n=1).encode() + b"\n",
            _octet(NOISE.format(n=2)),
            CANCELLED.format(host="esx-usb-01.lab.example", dev=USB).encode() + b"\r\n",
            _octet(LOSS.format(host="esx-usb-01.lab.example")),
        ]
    )
    cuts = sorted(random.Random(6).sample(range(1, len(stream)), 40))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    async with harness.receiver() as receiver:
        await _tcp_send(receiver.addresses["tcp"], chunks)
        await _until(lambda: len(harness.signals) == 3 and receiver.stats().connections == 0)
        stats = receiver.stats()
    assert [s.kind for s in harness.signals] == [SignalKind.PRECURSOR, SignalKind.PRECURSOR, SignalKind.LOSS]
    assert all(s.source == "tcp:127.0.0.1" for s in harness.signals)
    assert harness.signals[1].line.endswith("Act:NONE")
    assert (stats.received, stats.parsed, stats.dropped_garbage, stats.buffered_bytes) == (5, 5, 0, 0)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        server_absent("openssl CLI absent: cannot generate a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_listener(harness: Harness, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    config = replace(BASE, udp_port=None, tcp_port=None, tls_port=0, tls_cert=cert, tls_key=key)
    client = ssl.create_default_context(cafile=str(cert))
    async with harness.receiver(config) as receiver:
        host, port = receiver.addresses["tls"]
        await _tcp_send((host, port), [random.Random(3).randbytes(5000)])  # not TLS at all
        _, writer = await asyncio.open_connection(host, port, ssl=client)
        writer.write(_octet(IN_DOUBT.format(host="esx-usb-01.lab.example", dev=USB)))
        writer.write(LOSS.format(host="esx-usb-01.lab.example").encode() + b"\n")
        await writer.drain()
        await _until(lambda: len(harness.signals) == 2)
        writer.close()
        await writer.wait_closed()
    assert [s.source for s in harness.signals] == ["tls:127.0.0.1", "tls:127.0.0.1"]
    assert [s.kind for s in harness.signals] == [SignalKind.PRECURSOR, SignalKind.LOSS]


async def test_tls_needs_cert_and_key(harness: Harness) -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key"):
        await harness.receiver(replace(BASE, tls_port=0)).start()


async def _still_works(harness: Harness, receiver: SyslogReceiver) -> None:
    """A good line over TCP and one over UDP still signal (UDP is lossy: resend until seen)."""
    before = len(harness.signals)
    await _tcp_send(receiver.addresses["tcp"], [b"\n" + _octet(LOSS.format(host="esx-usb-01.lab.example"))])
    await _until(lambda: len(harness.signals) == before + 1)
    line = IN_DOUBT.format(host="esx-usb-01.lab.example", dev=USB).encode()
    async with asyncio.timeout(5):
        while len(harness.signals) == before + 1:
            _udp_send(receiver.addresses["udp"], [line])
            await asyncio.sleep(0.05)
    assert [s.kind for s in harness.signals[before : before + 2]] == [SignalKind.LOSS, SignalKind.PRECURSOR]


async def test_one_megabyte_of_random_bytes_is_survived(harness: Harness) -> None:
    noise = random.Random(1).randbytes(1024 * 1024)
    async with harness.receiver() as receiver:
        await _tcp_send(receiver.addresses["tcp"], [noise[i : i + 4096] for i in range(0, len(noise), 4096)])
        _udp_send(receiver.addresses["udp"], [noise[i : i + 1400] for i in range(0, 256 * 1024, 1400)])
        await _until(lambda: receiver.stats().connections == 0)
        await _still_works(harness, receiver)
        stats = receiver.stats()
    assert stats.received > 1000
    assert stats.dropped_garbage + stats.dropped_oversize > 1000
    assert stats.buffered_bytes == 0
    assert stats.signals >= 2


async def test_hundred_thousand_malformed_lines_are_counted(harness: Harness) -> None:
    rng = random.Random(2)
    shapes = [
        "<166>1 2024-03-02T10:15:00Z",
        "<999>1 2024-03-02T10:15:00Z esx vmkernel - - - m",
        "2024-13-45T99:99:99Z cpu1:1)x",
        "<166>1 - - - - - [broken sd",
        "\x1b[2J\x07\x00",
        "cpu1:2)NMP device state in doubt",
        "<166>Feb 30 10:10:10 esx",
    ]
    lines = [rng.choice(shapes) + str(i) for i in range(100_000)]
    payload = ("\n".join(lines) + "\n").encode()
    async with harness.receiver() as receiver:
        await _tcp_send(
            receiver.addresses["tcp"], [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
        )
        await _until(lambda: receiver.stats().received >= 100_000, timeout=20)
        await _still_works(harness, receiver)
        stats = receiver.stats()
    assert stats.dropped_garbage >= 99_000
    assert stats.parsed + stats.dropped_garbage == stats.received


async def test_flood_is_rate_limited_per_source(harness: Harness) -> None:
    config = replace(BASE, rate=10.0, burst=50.0)
    async with harness.receiver(config, monotonic=lambda: 1000.0) as receiver:
        lines = [NOISE.format(n=i).encode() + b"\n" for i in range(2000)]
        await _tcp_send(receiver.addresses["tcp"], [b"".join(lines)])
        await _until(lambda: receiver.stats().received == 2000)
        stats = receiver.stats()
    assert (stats.parsed, stats.dropped_ratelimit) == (50, 1950)


async def test_oversize_lines_are_dropped_and_framing_recovers(harness: Harness) -> None:
    config = replace(BASE, max_line=512)
    big = "x" * 5000
    stream = [
        NOISE.format(n=big).encode() + b"\n",
        _octet(NOISE.format(n=big)),
        LOSS.format(host="esx-usb-01.lab.example").encode() + b"\n",
    ]
    async with harness.receiver(config) as receiver:
        await _tcp_send(receiver.addresses["tcp"], stream)
        _udp_send(receiver.addresses["udp"], [NOISE.format(n=big).encode()])
        await _until(lambda: len(harness.signals) == 1 and receiver.stats().dropped_oversize == 3)
    assert harness.signals[0].kind is SignalKind.LOSS


async def test_connection_and_buffer_bounds(harness: Harness) -> None:
    config = replace(BASE, max_connections=2, max_buffered_bytes=4096, max_line=100_000)
    async with harness.receiver(config) as receiver:
        address = receiver.addresses["tcp"]
        kept = [await asyncio.open_connection(*address) for _ in range(2)]
        await _until(lambda: receiver.stats().connections == 2)
        reader, writer = await asyncio.open_connection(*address)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        assert receiver.stats().connections_rejected == 1
        kept[0][1].write(b"<14>1 partial line without end " + b"y" * 8000)
        assert await asyncio.wait_for(kept[0][0].read(), 5) == b""  # over the buffer bound
        await _until(lambda: receiver.stats().connections == 1)
        stats = receiver.stats()
        for _, kept_writer in kept:
            kept_writer.close()
    assert stats.connections_rejected == 2
    assert stats.buffered_bytes == 0


async def test_idle_connections_are_closed(harness: Harness) -> None:
    async with harness.receiver(replace(BASE, idle_timeout=0.2)) as receiver:
        reader, writer = await asyncio.open_connection(*receiver.addresses["tcp"])
        writer.write(b"<14>1 partial")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await _until(lambda: receiver.stats().connections == 0)
        assert receiver.stats().buffered_bytes == 0


async def test_a_failing_consumer_does_not_stop_delivery() -> None:
    seen: list[LogSignal] = []

    async def flaky(signal: LogSignal) -> None:
        seen.append(signal)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    receiver = SyslogReceiver(BASE, load_rules(), HostIndex(HOSTS).resolve, flaky)
    async with receiver:
        line = IN_DOUBT.format(host="esx-usb-01.lab.example", dev=USB).encode()
        _udp_send(receiver.addresses["udp"], [line, line])
        await _until(lambda: len(seen) == 2)


async def test_run_serves_until_cancelled(harness: Harness) -> None:
    receiver = harness.receiver(replace(BASE, udp_port=None))
    task = asyncio.create_task(receiver.run())
    await _until(lambda: "tcp" in receiver.addresses)
    await _tcp_send(receiver.addresses["tcp"], [_octet(LOSS.format(host="esx-usb-01.lab.example"))])
    await _until(lambda: len(harness.signals) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(OSError):
        await asyncio.open_connection(*receiver.addresses["tcp"])


# --- framing alone ------------------------------------------------------------------------------
def _feed_bytewise(framer: Framer, stream: bytes) -> list[bytes]:
    return [frame for i in range(len(stream)) for frame in framer.feed(stream[i : i + 1])]


@pytest.mark.parametrize("bytewise", [False, True])
def test_framer_both_framings(bytewise: bool) -> None:
    stream = (
        b"11 hello world"
        + b"plain line\r\n"
        + b"3 abc"
        + b"\n\n"
        + b"0 zero starts a line\n"
        + b"12345678x\n"
    )
    framer = Framer(max_line=100)
    frames = _feed_bytewise(framer, stream) if bytewise else framer.feed(stream)
    assert frames == [b"hello world", b"plain line", b"abc", b"0 zero starts a line", b"12345678x"]
    assert (framer.buffered, framer.oversize) == (0, 0)


@pytest.mark.parametrize("bytewise", [False, True])
def test_framer_skips_oversize_frames_without_holding_them(bytewise: bool) -> None:
    stream = b"500 " + b"a" * 500 + b"b" * 300 + b"\n" + b"ok\n" + b"2 hi"
    framer = Framer(max_line=64)
    held: list[int] = []
    frames: list[bytes] = []
    for i in range(0, len(stream), 1 if bytewise else 50):
        frames += framer.feed(stream[i : i + (1 if bytewise else 50)])
        held.append(framer.buffered)
    assert frames == [b"ok", b"hi"]
    assert framer.oversize == 2
    assert max(held) <= 64 + 50
