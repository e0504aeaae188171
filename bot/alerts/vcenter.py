"""The vCenter side of alerting: one watcher per vCenter turns its inventory and events into signals.

``VCenterAlertWatcher.attach`` (or ``serve``, which also runs both loops) registers on a ``VSphere``
(``on_hosts`` and ``on_events``) before the VSphere's ``run`` starts, so host snapshots (config
issues, overall status, connection state, bootbank mount state) and the EventHistoryCollector's new
events arrive from one WaitForUpdatesEx loop. The callbacks only queue; ``run`` takes the queue in
order: host snapshots through ``StateTracker``, events through the rules in ``bot.vsphere.events``
(a storage precursor counts only on the host's boot device), each signal into ``AlertEngine.ingest``.

Restarts: every event that raised a signal, and the newest key of each batch, is marked in
``HandledEventRepo``; ``attach`` resumes after the last marked key, so the feed reads back what
happened while the bot was down and skips what it already handled. A first start ever marks the
newest existing event and alerts from there on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bot.alerts.engine import AlertEngine
from bot.alerts.vcenter_signals import EVENT_RULES, EventRule, StateTracker, event_signals
from bot.clock import Clock
from bot.model import Host
from bot.store.alert_records import HandledEventRepo
from bot.vsphere.events import VCenterEvent

log = logging.getLogger(__name__)


class WatchedVCenter(Protocol):
    """What the watcher needs from ``bot.vsphere.client.VSphere``."""

    name: str

    def get(self, name: str) -> Host | None: ...

    def on_hosts(self, callback: Callable[[tuple[Host, ...]], None]) -> None: ...

    def on_events(
        self, callback: Callable[[list[VCenterEvent], int], None], *, after: int | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _Events:
    events: tuple[VCenterEvent, ...]
    last_key: int


@dataclass(frozen=True, slots=True)
class WatcherStats:
    snapshots: int
    events: int
    signals: int
    last_key: int | None


class VCenterAlertWatcher:
    def __init__(
        self,
        vcenter: WatchedVCenter,
        engine: AlertEngine,
        handled: HandledEventRepo,
        clock: Clock,
        *,
        rules: Sequence[EventRule] = EVENT_RULES,
        keep_handled: timedelta = timedelta(days=7),
    ) -> None:
        self._vc = vcenter
        self._engine = engine
        self._handled = handled
        self._clock = clock
        self._rules = rules
        self._keep = keep_handled
        self._tracker = StateTracker(vcenter.name)
        self._queue: asyncio.Queue[tuple[Host, ...] | _Events] = asyncio.Queue()
        self._snapshots = self._events = self._signals = 0
        self._last_key: int | None = None

    @property
    def name(self) -> str:
        return self._vc.name

    def stats(self) -> WatcherStats:
        return WatcherStats(self._snapshots, self._events, self._signals, self._last_key)

    async def attach(self) -> int | None:
        """Register the hooks (before ``VSphere.run``); returns the event key it resumes after."""
        now = self._clock.now().timestamp()
        after = await self._handled.last_key(self.name)
        await self._handled.prune(self.name, now - self._keep.total_seconds())
        self._last_key = after
        self._vc.on_hosts(self._queue.put_nowait)
        self._vc.on_events(
            lambda events, key: self._queue.put_nowait(_Events(tuple(events), key)), after=after
        )
        log.info("vCenter %s alert watch resumes after event %s", self.name, after)
        return after

    async def serve(self, run_vcenter: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """``attach``, then this watcher and the vCenter's own watch loop together, until cancelled.

        The app's leader loop per vCenter: ``functools.partial(watcher.serve, vc.run)``. A new
        leadership term attaches again and resumes after the last handled event.
        """
        await self.attach()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.run(), name=f"alert-watch-{self.name}")
            group.create_task(run_vcenter(), name=f"vcenter-{self.name}")

    async def run(self) -> None:
        """Turn queued snapshots and events into signals until cancelled."""
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Events):
                    await self._take_events(item)
                else:
                    await self._take_hosts(item)
            except Exception:
                log.exception("vCenter %s: alert watch step failed", self.name)

    async def _take_hosts(self, hosts: tuple[Host, ...]) -> None:
        self._snapshots += 1
        for signal in self._tracker.update(hosts):
            self._signals += 1
            await self._engine.ingest(signal)

    async def _take_events(self, batch: _Events) -> None:
        now = self._clock.now().timestamp()
        for event in batch.events:
            self._events += 1
            host = self._vc.get(event.host) if event.host else None
            signals = event_signals(self.name, event, host, self._rules)
            for signal in signals:
                self._signals += 1
                await self._engine.ingest(signal)
            if signals:
                log.info(
                    "vCenter %s event %d (%s) raised %d signal(s)",
                    self.name,
                    event.key,
                    event.type,
                    len(signals),
                )
                await self._handled.mark(self.name, event.key, now)
        if self._last_key is None or batch.last_key > self._last_key:
            await self._handled.mark(self.name, batch.last_key, now)
            self._last_key = batch.last_key
