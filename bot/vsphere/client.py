"""``VSphere``: the one async face to a vCenter, and a live ``Inventory`` of its hosts.

Every pyVmomi call runs on the instance's own ThreadPoolExecutor (``_call``); what comes back
is ``bot.model`` values only. Lifecycle::

    vc = VSphere.from_settings(settings.vcenters[0], release=catalog_lookup)
    hosts = await vc.refresh()          # one ContainerView + RetrievePropertiesEx, now
    task = tg.create_task(vc.run())     # keep it current (WaitForUpdatesEx), survive outages
    vc.hosts(); vc.get("esx01"); vc.freshness(); vc.status()
    vc.on_hosts(cb); vc.on_events(cb, after=key)   # before run: alerting hooks (bot.alerts.vcenter)
    await vc.close()

``run`` loads the inventory, then follows WaitForUpdatesEx (each wait doubles as keep-alive).
When vCenter goes away it logs the outage once, keeps answering from the last snapshot (marked
stale with its age in ``freshness``/``status``), reconnects with capped exponential backoff
(``backoff=(first, cap)`` seconds) and logs the recovery. ``NotAuthenticated`` (a restarted
vCenter, an expired session) triggers one re-login inside ``Session``.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from bot.clock import Clock, SystemClock
from bot.inventory.merged import Freshness, find_host
from bot.model import Host
from bot.vsphere.collect import Watch, full_refresh
from bot.vsphere.eventfeed import EventFeed
from bot.vsphere.events import VCenterEvent
from bot.vsphere.host_retrieval import PAGE_SIZE, ReleaseLookup
from bot.vsphere.session import Endpoint, Session
from bot.vsphere.soap import SoapFault

if TYPE_CHECKING:
    from pyVmomi import vim

    from bot.config import VCenterSettings

T = TypeVar("T")
HostsCallback = Callable[[tuple[Host, ...]], None]
EventsCallback = Callable[[list[VCenterEvent], int], None]
log = logging.getLogger("esxbot.vsphere")

# What "vCenter is unreachable or answered nonsense" looks like from the worker threads.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
    ssl.SSLError,
    SoapFault,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class VCenterStatus:
    """What ``check`` says about a vCenter connection."""

    name: str
    connected: bool
    hosts: int
    refreshed_at: datetime | None
    age_seconds: float | None  # how old the answers are
    outage_since: datetime | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.connected:
            return f"vCenter {self.name}: connected, {self.hosts} hosts"
        age = f"{self.age_seconds:.0f} s old" if self.age_seconds is not None else "no data yet"
        since = f"{self.outage_since:%H:%M:%S}" if self.outage_since else "?"
        return f"vCenter {self.name}: UNREACHABLE since {since} ({self.error}); answers are {age}"


class VSphere:
    """One vCenter: async calls on a private thread pool, plus the live host inventory."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        release: ReleaseLookup | None = None,
        clock: Clock | None = None,
        wait_seconds: int = 30,
        backoff: tuple[float, float] = (1.0, 60.0),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.name = endpoint.name
        self._endpoint = endpoint
        self._release = release
        self._clock = clock or SystemClock()
        self._wait_seconds = wait_seconds
        self._backoff = backoff
        self._page_size = page_size
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"vsphere-{endpoint.name}")
        self._session = Session(endpoint)
        self._hosts: tuple[Host, ...] = ()
        self._refreshed_at: datetime | None = None
        self._refreshed_mono: float | None = None
        self._outage_since: datetime | None = None
        self._error: str | None = None
        self._stopping = False
        self._host_callbacks: list[HostsCallback] = []
        self._events: tuple[EventsCallback, EventFeed] | None = None
        self.on_refresh: Callable[[str, float, int], None] | None = None  # (vCenter, seconds, hosts)
        self.on_reconnect: Callable[[str], None] | None = None  # a session logged in again
        self._reconnects_seen = 0
        if endpoint.insecure:
            log.warning("vCenter %s: TLS certificate verification is DISABLED (insecure: true)", self.name)

    @classmethod
    def from_settings(cls, settings: VCenterSettings, **kwargs: object) -> VSphere:
        endpoint = Endpoint(
            name=settings.name,
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password.reveal(),
            ca_file=settings.ca_file,
            thumbprint=settings.thumbprint,
            insecure=settings.insecure,
        )
        return cls(endpoint, **kwargs)  # type: ignore[arg-type]

    @property
    def endpoint(self) -> Endpoint:
        """Where this vCenter is (the vLCM REST client talks to the same one)."""
        return self._endpoint

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """The one door to the worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def call(self, fn: Callable[[vim.ServiceInstance], T]) -> T:
        """Run ``fn(service_instance)`` on this client's worker threads with a logged-in session.

        Logs in first if needed and once more on ``NotAuthenticated``. ``fn`` runs on a worker
        thread and must return plain values: no ``vim`` object may leave it.
        """

        def in_session() -> T:
            result: T = self._session.call(fn)
            return result

        return await self._call(in_session)

    # --- the Inventory protocol (bot.inventory.merged) ---------------------------------------------

    def hosts(self) -> Sequence[Host]:
        return self._hosts

    def get(self, name: str) -> Host | None:
        return find_host(self._hosts, name)

    def freshness(self) -> Sequence[Freshness]:
        status = self.status()
        return (
            Freshness(
                source=f"vcenter:{self.name}",
                refreshed_at=status.refreshed_at,
                stale=not status.connected,
                error=None
                if status.connected
                else f"unreachable since {status.outage_since}: {status.error}",
            ),
        )

    def status(self) -> VCenterStatus:
        age = None if self._refreshed_mono is None else self._clock.monotonic() - self._refreshed_mono
        return VCenterStatus(
            name=self.name,
            connected=self._outage_since is None and self._refreshed_at is not None,
            hosts=len(self._hosts),
            refreshed_at=self._refreshed_at,
            age_seconds=age,
            outage_since=self._outage_since,
            error=self._error,
        )

    # --- refresh and watch -----------------------------------------------------------------

    def on_hosts(self, callback: HostsCallback) -> None:
        """Call ``callback(hosts)`` (on the event loop) with every new inventory snapshot (once each)."""
        if callback not in self._host_callbacks:
            self._host_callbacks.append(callback)

    def on_events(self, callback: EventsCallback, *, after: int | None) -> None:
        """Watch vCenter's events in the same WaitForUpdatesEx loop, from the next watch start on.

        ``callback(events, last_key)`` gets the events newer than ``after`` (read back after a
        restart or an outage) in key order; ``after=None`` starts after the newest event.
        """
        self._events = (callback, EventFeed(after))

    def _publish(self, hosts: tuple[Host, ...]) -> None:
        self._hosts = hosts
        self._mark_fresh()
        for callback in self._host_callbacks:
            try:
                callback(hosts)
            except Exception:
                log.exception("vCenter %s: host callback failed", self.name)

    def _emit_events(self) -> None:
        if self._events is None:
            return
        callback, feed = self._events
        drained = feed.drain()
        if drained is not None:
            try:
                callback(*drained)
            except Exception:
                log.exception("vCenter %s: events callback failed", self.name)

    def _mark_fresh(self) -> None:
        self._refreshed_at = self._clock.now()
        self._refreshed_mono = self._clock.monotonic()
        if self._outage_since is not None:
            down = (self._refreshed_at - self._outage_since).total_seconds()
            log.warning("vCenter %s is back after %.1f s; inventory refreshed", self.name, down)
        self._outage_since = None
        self._error = None

    def _mark_outage(self, exc: BaseException) -> None:
        self._error = f"{type(exc).__name__}: {exc}"
        if self._outage_since is None:
            self._outage_since = self._clock.now()
            log.warning(
                "vCenter %s unreachable (%s); answering from the inventory of %s",
                self.name,
                self._error,
                self._refreshed_at.isoformat() if self._refreshed_at else "never",
            )

    def _refresh_sync(self) -> tuple[Host, ...]:
        return full_refresh(self._session, self._page_size).hosts(self.name, self._release)

    async def refresh(self) -> tuple[Host, ...]:
        """One full retrieval now; raises on errors (``run`` is the one that survives them)."""
        started = time.perf_counter()
        try:
            hosts = await self._call(self._refresh_sync)
        finally:
            self._count_logins()
        if self.on_refresh is not None:
            self.on_refresh(self.name, time.perf_counter() - started, len(hosts))
        self._publish(hosts)
        return hosts

    def _count_logins(self) -> None:
        """Every login after the first is a reconnect; tell ``on_reconnect`` about the new ones."""
        reconnects = max(0, self._session.logins - 1)
        if self.on_reconnect is not None:
            for _ in range(reconnects - self._reconnects_seen):
                self.on_reconnect(self.name)
        self._reconnects_seen = reconnects

    def _watch_step(self, watch: Watch) -> tuple[Host, ...] | None:
        return watch.snapshot.hosts(self.name, self._release) if watch.next(self._wait_seconds) else None

    def _reset_session(self) -> None:
        self._session.close()

    async def run(self) -> None:
        """Keep the inventory current until cancelled (or ``close``).

        The watch's collector and view die with the session (``close`` logs out), so neither
        cancellation nor an outage cleans them up one by one.
        """
        delay = self._backoff[0]
        while not self._stopping:
            try:
                await self.refresh()
                feed = self._events[1] if self._events else None
                watch = await self._call(Watch, self._session, self._page_size, feed)
                delay = self._backoff[0]
                while not self._stopping:
                    hosts = await self._call(self._watch_step, watch)
                    if hosts is None:
                        self._mark_fresh()
                    else:
                        self._publish(hosts)
                    self._emit_events()
            except OUTAGE_ERRORS as exc:
                self._mark_outage(exc)
                await self._call(self._reset_session)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._backoff[1])

    async def close(self) -> None:
        """Stop watching, log out and release the threads (waits for a pending wait to end)."""
        self._stopping = True
        await self._call(self._session.close)
        await asyncio.to_thread(self._executor.shutdown, True)
        # a call still running during the logout (a cancelled watch) may have logged in again or
        # pooled its connection; no thread is left now, so this second close drops what remains
        await asyncio.to_thread(self._session.close)
