"""An alert engine over a real SQLite file, a real outbox and a fake clock, with recording chat rooms.

``RecordingAdapter`` implements the ``ChatAdapter`` contract in memory (our own protocol, not an
SDK): it remembers every message and every edit so tests assert on exactly what people would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.alerts.engine import AlertEngine
from bot.alerts.inhibition import InhibitRuleSet
from bot.alerts.intake import EngineConfig
from bot.alerts.oncall import OnCallPolicy, parse_oncall
from bot.chat.base import CommandHandler, TransportHealth
from bot.chat.outbox import Outbox
from bot.clock import FakeClock
from bot.messages import Reply
from bot.model import BootDevice, BootKind, Host
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.migrate import migrate
from bot.store.sql.sqlite import SqliteDatabase
from bot.store.subscriptions import SubscriptionRepo

MATRIX_ROOM = "matrix:!ops:example.org"
SLACK_ROOM = "slack:C0OPS"

ONCALL: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "people": {
        "ann": {"slack": "U0ANN", "matrix": "@ann:example.org", "console": "ann"},
        "bob": {"slack": "U0BOB", "matrix": "@bob:example.org"},
        "cy": {"slack": "U0CY", "matrix": "@cy:example.org"},
    },
    "rotation": {
        "members": ["ann", "bob", "cy"],
        "handoff": "weekly",
        "day": "monday",
        "at": "09:00",
        "start": "2021-08-02",
    },
    "escalation": [{"notify": "room"}, {"notify": "oncall"}, {"notify": "next", "after": "10m"}],
    "repeat": "30m",
    "ack_timeout": "2h",
}

USB_HOST = Host(
    name="esx-usb-01",
    build=17867351,
    version="7.0.2",
    release_name="ESXi 7.0 Update 2a",
    boot_device=BootDevice(BootKind.USB, "mpx.vmhba32:C0:T0:L0", "vmhba32", "vmkusb"),
)


@dataclass
class Sent:
    room: str
    message_id: str
    reply: Reply
    thread: str | None
    edits: list[Reply] = field(default_factory=list)

    @property
    def current(self) -> Reply:
        return self.edits[-1] if self.edits else self.reply


class RecordingAdapter:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.sent: list[Sent] = []

    async def run(self, handle: CommandHandler) -> None:
        """A recording platform receives no commands: wait until cancelled."""
        await asyncio.Event().wait()

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        message_id = f"{self.platform}-msg-{len(self.sent) + 1}"
        self.sent.append(Sent(room, message_id, reply, thread))
        return message_id

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        for s in self.sent:
            if s.message_id == message_id:
                s.edits.append(reply)
                return
        raise AssertionError(f"edit of unknown message {message_id}")

    def health(self) -> TransportHealth:
        return TransportHealth(self.platform, True, 0.0)


@dataclass
class Rig:
    db: SqliteDatabase
    clock: FakeClock
    outbox: Outbox
    adapters: dict[str, Any]
    engine: AlertEngine
    make_engine: Callable[[], AlertEngine]

    @property
    def matrix(self) -> RecordingAdapter:
        return self.adapters["matrix"]  # type: ignore[no-any-return]

    @property
    def slack(self) -> RecordingAdapter:
        return self.adapters["slack"]  # type: ignore[no-any-return]

    async def deliver(self) -> None:
        for platform in self.adapters:
            while await self.outbox.deliver_due(self.adapters, platform):
                pass

    async def advance(self, seconds: float) -> int:
        """Move time, run the engine's due steps, deliver what they queued."""
        self.clock.advance(seconds)
        steps = await self.engine.tick()
        await self.deliver()
        return steps

    def messages(self, platform: str = "matrix") -> list[Sent]:
        return list(self.adapters[platform].sent)


@asynccontextmanager
async def alert_rig(
    tmp_path: Path,
    *,
    oncall: dict[str, Any] | None = None,
    config: EngineConfig | None = None,
    fix_hint: Callable[[Host], str | None] | None = None,
    adapters: dict[str, Any] | None = None,
    clock: FakeClock | None = None,
    hosts: dict[str, Host] | None = None,
    inhibitions: InhibitRuleSet | None = None,
) -> AsyncIterator[Rig]:
    db = await SqliteDatabase.open(tmp_path / "alerts.db")
    await migrate(db)
    clock = clock or FakeClock()
    subs = SubscriptionRepo(db)
    await subs.add(MATRIX_ROOM, "alerts", by="test", at=clock.now())
    await subs.add(SLACK_ROOM, "alerts", by="test", at=clock.now())
    outbox = Outbox(OutboxRepo(db), subs, clock)
    policy: OnCallPolicy = parse_oncall(ONCALL if oncall is None else oncall)
    known = hosts or {USB_HOST.name: USB_HOST}

    def make_engine() -> AlertEngine:
        return AlertEngine(
            db,
            outbox,
            clock,
            hosts=known.get,
            policy=policy,
            config=config or EngineConfig(group_wait=timedelta(0)),
            fix_hint=fix_hint,
            inhibitions=inhibitions,
        )

    rig = Rig(
        db,
        clock,
        outbox,
        adapters or {"matrix": RecordingAdapter("matrix"), "slack": RecordingAdapter("slack")},
        make_engine(),
        make_engine,
    )
    try:
        yield rig
    finally:
        await db.close()
