"""The vCenter alert path composed for tests and benchmarks: vcsimlab → VSphere → watcher → engine → outbox.

``AlertStack`` owns one database file and can be started and killed repeatedly over it (a restart);
``start`` runs ``VCenterAlertWatcher.serve`` (the watcher with ``VSphere.run``, as the app wires it),
``AlertEngine.run`` and one outbox delivery loop per adapter on the real clock, and returns once the
first inventory snapshot went through the watcher and the event feed knows where it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.alerts.engine import AlertEngine
from bot.alerts.intake import EngineConfig
from bot.alerts.labels import DEFAULT_GROUP_BY
from bot.alerts.oncall import parse_oncall
from bot.alerts.vcenter import VCenterAlertWatcher
from bot.chat.outbox import Outbox
from bot.clock import SystemClock
from bot.model import Host
from bot.store.alert_records import HandledEventRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.migrate import migrate
from bot.store.sql.sqlite import SqliteDatabase
from bot.store.subscriptions import SubscriptionRepo
from bot.vsphere.client import VSphere
from bot.vsphere.session import Endpoint
from tests.fixtures.vcsim import Vcsim

USB_HOST = "esx-usb-01.lab.local"
USB_HOST_2 = "esx-usb-02.lab.local"
DISK_HOST = "esx-disk-03.lab.local"
BOOT_DEVICE = "mpx.vmhba32:C0:T0:L0"

_BOOTBANKS = [{"name": "BOOTBANK1", "type": "vfat"}, {"name": "BOOTBANK2", "type": "vfat"}]
_PERC = {"device": "vmhba0", "driver": "lsi_mr3", "model": "PERC H730P Mini"}
_USB = {"device": "vmhba32", "driver": "vmkusb", "model": "USB"}
_USB_VOLUMES = [*_BOOTBANKS, {"name": "OSDATA-5f1c", "type": "VMFSOS", "device": BOOT_DEVICE, "partition": 7}]

# Two USB-booted 7.0 U2a hosts and one on a local disk, all healthy at start.
MODEL: dict[str, Any] = {
    "datacenter": "dc1",
    "clusters": 1,
    "hosts_per_cluster": 3,
    "vms_per_cluster": 1,
    "cluster_names": ["prod"],
    "defaults": {
        "version": "7.0.2",
        "build": "17867351",
        "vendor": "HPE",
        "model": "ProLiant DL380 Gen10",
        "hbas": [_PERC, _USB],
        "volumes": _USB_VOLUMES,
    },
    "hosts": [
        {"name": USB_HOST},
        {"name": USB_HOST_2},
        {
            "name": DISK_HOST,
            "hbas": [_PERC],
            "volumes": [
                *_BOOTBANKS,
                {"name": "OSDATA-61a0", "type": "VMFSOS", "device": "naa.600508b1001c5a1e", "partition": 7},
            ],
        },
    ],
}

FIX_HINT = "PR 2777003 in ESXi 7.0 Update 2c"


def oncall(first: str, second: str, *, after: str = "2s", repeat: str | None = None) -> dict[str, Any]:
    """``first`` is on call (mentioned on the page), ``second`` is the next level after ``after``."""
    return {
        **({"repeat": repeat} if repeat else {}),
        "timezone": "UTC",
        "people": {"ann": {"matrix": first, "console": "ann"}, "bob": {"matrix": second, "console": "bob"}},
        "rotation": {
            "members": ["ann"],
            "handoff": "weekly",
            "day": "monday",
            "at": "09:00",
            "start": "2021-08-02",
        },
        "escalation": [{"notify": "room"}, {"notify": "oncall"}, {"notify": ["bob"], "after": after}],
        "ack_timeout": "2h",
    }


def fix_hint(host: Host) -> str | None:
    """The release matcher's answer for the lab's 7.0 U2a hosts (a stand-in for release_service)."""
    return FIX_HINT if host.build == 17867351 else None


@dataclass
class AlertStack:
    lab: Vcsim
    db_path: Path
    rooms: tuple[str, ...]
    adapters: Mapping[str, Any]
    policy: dict[str, Any]
    pending_for: float = 0.5  # alerts.for
    group_wait: float = 0.0
    group_interval: float = 1.0
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    # called with the opened database before the loops start (e.g. to build a MatrixAdapter on it)
    on_db: Callable[[SqliteDatabase], Awaitable[Mapping[str, Any]]] | None = None
    poll: float | None = None  # the naive way: RetrievePropertiesEx every ``poll`` s instead of the watch
    db: SqliteDatabase | None = None
    engine: AlertEngine | None = None
    watcher: VCenterAlertWatcher | None = None
    vc: VSphere | None = None
    resumed_after: int | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, *, ready_timeout: float = 20.0) -> None:
        clock = SystemClock()
        self.db = db = await SqliteDatabase.open(self.db_path)
        await migrate(db)
        if self.on_db is not None:
            self.adapters = await self.on_db(db)
        subs = SubscriptionRepo(db)
        for room in self.rooms:
            if room not in await subs.rooms("alerts"):
                await subs.add(room, "alerts", by="test", at=clock.now())
        outbox = Outbox(OutboxRepo(db), subs, clock)
        self.vc = vc = VSphere(
            Endpoint(
                "vc1",
                self.lab.host,
                self.lab.user,
                self.lab.password,
                port=self.lab.port,
                timeout=10,
                ca_file=str(self.lab.ca_file),
            ),
            wait_seconds=5,
            backoff=(0.2, 1.0),
        )
        self.engine = AlertEngine(
            db,
            outbox,
            clock,
            hosts=vc.get,
            policy=parse_oncall(self.policy),
            config=EngineConfig(
                pending_for=timedelta(seconds=self.pending_for),
                group_wait=timedelta(seconds=self.group_wait),
                group_interval=timedelta(seconds=self.group_interval),
                group_by=self.group_by,
            ),
            fix_hint=fix_hint,
        )
        handled = HandledEventRepo(db)
        self.resumed_after = await handled.last_key("vc1")
        self.watcher = watcher = VCenterAlertWatcher(vc, self.engine, handled, clock)
        poll = self.poll
        self._tasks = [
            asyncio.create_task(watcher.serve(vc.run if poll is None else lambda: self._poll(vc, poll))),
            asyncio.create_task(self.engine.run()),
            *(asyncio.create_task(outbox.run(self.adapters, platform)) for platform in self.adapters),
        ]
        await self.until(self._watching, ready_timeout)

    def _watching(self) -> bool:
        """The first snapshot went through and the event feed has its starting point."""
        stats = self.watcher.stats() if self.watcher is not None else None
        if stats is None or stats.snapshots == 0:
            return False
        return stats.last_key is not None or self.poll is not None

    @staticmethod
    async def _poll(vc: VSphere, every: float) -> None:
        while True:
            await vc.refresh()
            await asyncio.sleep(every)

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                for task in self._tasks:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.02)

    async def until_async(self, done: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        """``until`` for a condition that reads the database."""
        async with asyncio.timeout(timeout):
            while not await done():
                for task in self._tasks:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """Stop everything abruptly (cancel), keeping only what the database holds."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.vc is not None:
            await self.vc.close()
        if self.db is not None:
            await self.db.close()
