"""ESXi syslog receiver: UDP, TCP and TLS listeners that turn log lines into boot-device signals.

TCP accepts both RFC 6587 framings (octet-counted ``LEN SP MSG`` and newline-terminated, see
``framing.py``). Every line passes a per-source token bucket, a length bound and the parser; only lines the
rules' substring prefilter lets through cost a regex, and only hits cost a host lookup (``resolve``,
given by the integrator). Memory stays bounded: at most ``max_connections`` connections, each holding
at most one partial line, all of them together at most ``max_buffered_bytes``; at most
``max_sources`` rate-limit buckets; a bounded queue towards the (async) signal callback. Garbage,
floods and hostile peers are counted and dropped, never raised.

Anyone who can reach the port can send any text, so a line counts for a host only when it comes from
that host's management address; the hostname inside the line is believed only from the
``trusted_relays`` (collectors that forward for others). A line from an address that is no inventory
host, or naming another host than its sender, is counted and dropped: it never opens an alert.
One source holds at most ``max_connections_per_source`` TCP connections; a connection that has not
delivered a complete line within ``first_line_timeout`` is closed; and when all connections are taken,
a newcomer source displaces a connection of the source holding the most, so a flood from one peer
never locks out the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

from bot.alerts.framing import Framer
from bot.alerts.logline import parse_line, printable
from bot.alerts.patterns import LogRuleSet
from bot.alerts.signals import LogSignal, from_hits
from bot.model import Host
from bot.schema import PortOrAny, Range, Seconds

_log = logging.getLogger(__name__)

Resolver = Callable[[str | None, str | None], Host | None]
SignalSink = Callable[[LogSignal], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SyslogConfig:
    """Where to listen and how much to accept. A port of ``None`` disables it, 0 picks a free one."""

    bind: str = "127.0.0.1"
    udp_port: PortOrAny | None = 514
    tcp_port: PortOrAny | None = 514
    tls_port: PortOrAny | None = None  # ESXi's ssl:// default is 1514; needs tls_cert and tls_key
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_line: Annotated[int, Range(64, 1024 * 1024)] = 8192  # bytes; longer lines are dropped
    rate: Annotated[float, Range(0.1, None)] = 2000.0  # lines per second per source, sustained
    burst: Annotated[float, Range(1, None)] = 10000.0  # lines a source may send at once
    max_sources: Annotated[int, Range(1, None)] = 10000  # rate-limit buckets kept; the oldest is forgotten
    max_connections: Annotated[int, Range(1, None)] = 512
    max_buffered_bytes: Annotated[int, Range(1024, None)] = 16 * 1024 * 1024  # partial lines, all connections
    idle_timeout: Seconds = 900.0  # before a silent TCP connection is closed
    signal_queue: Annotated[int, Range(1, None)] = 10000
    max_connections_per_source: Annotated[int, Range(1, None)] = 16
    first_line_timeout: Seconds = 10.0  # a new TCP connection has this long to deliver its first line
    trusted_relays: tuple[str, ...] = ()  # addresses or networks whose lines' hostnames are believed
    enabled: bool = True  # the ``syslog`` section: false keeps the receiver off
    rule_files: tuple[str, ...] = ()  # extra log rule files (YAML), relative to the config file

    def __post_init__(self) -> None:
        if self.tls_port is not None and not (self.tls_cert and self.tls_key):
            raise ValueError("tls_port needs tls_cert and tls_key")
        networks = []
        for entry in self.trusted_relays:
            try:
                networks.append(ipaddress.ip_network(str(entry), strict=False))
            except ValueError:
                raise ValueError(f"trusted_relays: {entry!r} is not an address or network") from None
        object.__setattr__(self, "trusted_relays", tuple(str(n) for n in networks))


def plain_address(address: str) -> str:
    """``::ffff:10.0.0.5`` (a dual-stack socket's view of an IPv4 peer) as ``10.0.0.5``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


@dataclass(frozen=True, slots=True)
class SyslogStats:
    received: int = 0  # lines seen (before any check)
    parsed: int = 0
    dropped_garbage: int = 0  # not a log line in any known shape
    dropped_ratelimit: int = 0
    dropped_oversize: int = 0  # longer than max_line
    dropped_backlog: int = 0  # signals lost because the consumer fell behind
    signals: int = 0
    unmapped: int = 0  # signals from sources not in the inventory: dropped
    forged: int = 0  # signals naming another inventory host than their sender: dropped
    connections: int = 0  # open now
    connections_rejected: int = 0  # over max_connections(_per_source) or max_buffered_bytes
    connections_displaced: int = 0  # closed to make room for a source that had none
    buffered_bytes: int = 0  # partial lines held now


@dataclass(slots=True)
class _Counters:
    """The receiver's own mutable tallies; only ``SyslogStats`` snapshots leave the module."""

    received: int = 0
    parsed: int = 0
    dropped_garbage: int = 0
    dropped_ratelimit: int = 0
    dropped_oversize: int = 0
    dropped_backlog: int = 0
    signals: int = 0
    unmapped: int = 0
    forged: int = 0
    connections: int = 0
    connections_rejected: int = 0
    connections_displaced: int = 0
    buffered_bytes: int = 0

    def snapshot(self) -> SyslogStats:
        return SyslogStats(**{f.name: getattr(self, f.name) for f in fields(self)})


class SyslogReceiver:
    """``async with SyslogReceiver(...)`` or ``await receiver.run()`` inside the app's TaskGroup."""

    def __init__(
        self,
        config: SyslogConfig,
        rules: LogRuleSet,
        resolve: Resolver,
        on_signal: SignalSink,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._rules = rules
        self._resolve = resolve
        self._on_signal = on_signal
        self._monotonic = monotonic
        self._n = _Counters()
        self._buckets: dict[str, list[float]] = {}
        self._queue: asyncio.Queue[LogSignal] = asyncio.Queue(config.signal_queue)
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._conns: set[_TcpConnection] = set()
        self._by_source: dict[str, set[_TcpConnection]] = {}
        self._relays = [ipaddress.ip_network(n) for n in config.trusted_relays]
        self._tasks: list[asyncio.Task[None]] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    def stats(self) -> SyslogStats:
        return self._n.snapshot()

    async def __aenter__(self) -> SyslogReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self) -> None:
        """Listen until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def start(self) -> None:
        cfg, loop = self.config, asyncio.get_running_loop()
        try:
            if cfg.udp_port is not None:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(cfg.bind, cfg.udp_port)
                )
                self._udp = transport
                self.addresses["udp"] = transport.get_extra_info("sockname")[:2]
            if cfg.tcp_port is not None:
                await self._serve("tcp", cfg.tcp_port, None)
            if cfg.tls_port is not None:
                if cfg.tls_cert is None or cfg.tls_key is None:
                    raise ValueError("syslog TLS needs both tls_cert and tls_key")
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
                await self._serve("tls", cfg.tls_port, context)
        except BaseException:
            await self.close()
            raise
        self._tasks = [
            asyncio.create_task(self._deliver(), name="syslog-deliver"),
            asyncio.create_task(self._sweep(), name="syslog-idle-sweep"),
        ]
        _log.info("syslog receiver listening on %s", self.addresses)

    async def _serve(self, name: str, port: int, context: ssl.SSLContext | None) -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: _TcpConnection(self, name),
            self.config.bind,
            port,
            ssl=context,
            ssl_handshake_timeout=10.0 if context else None,
        )
        self._servers.append(server)
        self.addresses[name] = server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._tasks and not self._queue.empty():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- the hot path ---------------------------------------------------------------------------
    def feed_datagram(self, data: bytes, address: str) -> None:
        """One UDP datagram: usually one message, sometimes several newline-separated ones."""
        if b"\n" in data:
            for line in data.split(b"\n"):
                if line:
                    self.handle_line(line, address, "udp")
        elif data:
            self.handle_line(data, address, "udp")

    def handle_line(self, raw: bytes, address: str, transport: str) -> None:
        """Rate limit, bound, parse, match, resolve the host, queue the signals."""
        n = self._n
        n.received += 1
        if not self._admit(address):
            n.dropped_ratelimit += 1
            return
        if len(raw) > self.config.max_line:
            n.dropped_oversize += 1
            return
        line = parse_line(raw)
        if line is None:
            n.dropped_garbage += 1
            return
        n.parsed += 1
        hits = self._rules.match(line.message)
        if not hits:
            return
        host = self._sender(line.hostname, address)
        if host is None:
            return
        signals = from_hits(
            hits,
            line,
            host=host,
            host_name=host.name if host is not None else (line.hostname or address),
            text=printable(raw.decode("utf-8")),
            source=f"{transport}:{address}",
        )
        for signal in signals:
            n.signals += 1
            try:
                self._queue.put_nowait(signal)
            except asyncio.QueueFull:
                n.dropped_backlog += 1
                if n.dropped_backlog % 1000 == 1:  # a stuck consumer must not flood our own log
                    _log.warning("syslog signal queue full: %d signal(s) dropped so far", n.dropped_backlog)

    def _sender(self, hostname: str | None, address: str) -> Host | None:
        """The host a line with hits speaks for, or None (counted and logged) when it may not."""
        named = self._resolve(hostname, None) if hostname else None
        if self._relayed(address):
            if named is None:
                self._drop(
                    "unmapped", f"relay {address} forwarded a line for {hostname!r}, not in the inventory"
                )
            return named
        sender = self._resolve(None, address)
        if sender is None:
            self._drop("unmapped", f"{address} is no inventory host's management address")
        elif named is not None and named.name != sender.name:
            self._drop("forged", f"{address} ({sender.name}) sent a line naming {named.name}")
            return None
        return sender

    def _relayed(self, address: str) -> bool:
        if not self._relays:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._relays)

    def _drop(self, counter: str, why: str) -> None:
        count = getattr(self._n, counter) + 1
        setattr(self._n, counter, count)
        if count % 1000 == 1:  # a flood must not flood our own log
            _log.warning("syslog: dropped a signal line: %s (%d %s so far)", why, count, counter)

    def _admit(self, address: str) -> bool:
        """Token bucket per source address."""
        now = self._monotonic()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.config.max_sources:
                del self._buckets[next(iter(self._buckets))]
            self._buckets[address] = [self.config.burst - 1.0, now]
            return True
        tokens = min(self.config.burst, bucket[0] + (now - bucket[1]) * self.config.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    # --- background -----------------------------------------------------------------------------
    async def _deliver(self) -> None:
        while True:
            signal = await self._queue.get()
            try:
                await self._on_signal(signal)
            except Exception:
                _log.exception("syslog signal consumer failed on %s from %s", signal.rule, signal.source)
            finally:
                self._queue.task_done()

    async def _sweep(self) -> None:
        cfg = self.config
        period = max(0.05, min(30.0, cfg.idle_timeout / 4, cfg.first_line_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = self._monotonic()
            for conn in list(self._conns):
                if conn.last_active < now - cfg.idle_timeout:
                    _log.info("closing idle syslog connection from %s", conn.peer)
                elif not conn.delivered and conn.opened < now - cfg.first_line_timeout:
                    _log.info("closing syslog connection from %s: no complete line yet", conn.peer)
                else:
                    continue
                conn.abort()

    # --- connection bookkeeping (used by _TcpConnection) ----------------------------------------
    def _accept(self, conn: _TcpConnection) -> bool:
        """Admit a connection: within its source's cap; when all are taken, a new source displaces one."""
        cfg, mine = self.config, self._by_source.get(conn.peer, set())
        if len(mine) >= cfg.max_connections_per_source:
            self._n.connections_rejected += 1
            return False
        if len(self._conns) >= cfg.max_connections:
            if mine:
                self._n.connections_rejected += 1
                return False
            crowded = max(self._by_source.values(), key=len)
            victim = min(crowded, key=lambda c: (c.delivered, c.last_active))
            _log.info("syslog: closing a connection from %s to make room for %s", victim.peer, conn.peer)
            self._n.connections_displaced += 1
            victim.abort()
            self._forget(victim)
        self._conns.add(conn)
        self._by_source.setdefault(conn.peer, set()).add(conn)
        self._n.connections = len(self._conns)
        return True

    def _forget(self, conn: _TcpConnection) -> None:
        self._conns.discard(conn)
        mine = self._by_source.get(conn.peer)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self._by_source[conn.peer]
        self._n.connections = len(self._conns)

    def _buffer(self, delta: int, oversize: int) -> bool:
        """Account held bytes and skipped frames; False when the global byte bound is exceeded."""
        n = self._n
        n.buffered_bytes += delta
        n.dropped_oversize += oversize
        if n.buffered_bytes <= self.config.max_buffered_bytes:
            return True
        n.connections_rejected += 1
        return False


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: SyslogReceiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._receiver.feed_datagram(data, plain_address(str(addr[0])))

    def error_received(self, exc: Exception) -> None:
        _log.debug("syslog UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    """One TCP or TLS connection: frames its stream and hands each line to the receiver."""

    def __init__(self, receiver: SyslogReceiver, kind: str) -> None:
        self._r = receiver
        self._kind = kind
        self._framer = Framer(receiver.config.max_line)
        self._transport: asyncio.Transport | None = None
        self.peer = "?"
        self.last_active = self.opened = receiver._monotonic()
        self.delivered = False  # a complete line has arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            transport.close()
            return
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = plain_address(str(peer[0])) if peer else "?"
        if not self._r._accept(self):
            transport.abort()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._r._buffer(-self._framer.buffered, 0)
        self._framer.reset()
        self._r._forget(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        self.last_active = self._r._monotonic()
        framer = self._framer
        held, oversize = framer.buffered, framer.oversize
        for frame in framer.feed(data):
            self.delivered = True
            self._r.handle_line(frame, self.peer, self._kind)
        if not self._r._buffer(framer.buffered - held, framer.oversize - oversize):
            _log.warning("syslog buffers full, dropping connection from %s", self.peer)
            self.abort()
