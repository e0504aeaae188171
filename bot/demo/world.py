"""The demo's parts in one place for the composition root: settings, fleet, host operations, BMC, tour.

``bot.runtime.app`` builds a ``DemoWorld`` only in demo mode (no chat platform, vCenter or
inventory file configured) and takes from it the inventory, the ``HostOps`` for the job runner,
the BMC directory, defaults for the job, alert and on-call settings, the console's first screen,
the note on every ``check`` card and the loop that turns the fleet's state into alert signals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from bot.alerts.engine import AlertEngine
from bot.alerts.vcenter_signals import StateTracker
from bot.builds import BuildCatalog
from bot.clock import Clock
from bot.config import Settings
from bot.demo.bmc import DemoBmc
from bot.demo.fleet import DemoFleet
from bot.demo.host_ops import DemoHostOps
from bot.inventory.demo import demo_inventory
from bot.messages import Block, Style, Text
from bot.model import Host
from bot.schema import Range, parse
from bot.store.subscriptions import SubscriptionRepo

log = logging.getLogger(__name__)

CONSOLE_ROOM = "console:console"
STEP = 2.0  # seconds one simulated step takes, unless demo_fleet.step says otherwise
STATE_FILE = "var/demo-fleet.json"
DEPOT = "https://depot.demo.invalid/esxi/{version}/{build}/index.xml"  # .invalid: never reachable

TOUR = """\
DEMO MODE: a simulated fleet of nine ESXi hosts; nothing here reaches real hardware.
This console is subscribed to alerts and releases. A five-step tour:
  1. check esx01              a USB-booted 7.0 U2a host and the fixes that matter to it
  2. demo break esx01         its USB stick fails: a precursor page, then the bootbank is lost
  3. ack <alert>              acknowledge the page (its number is in the page)
  4. patch esx01 to 7.0 U2c   the pre-checks refuse a host that lost its bootbank; say
                              `patch esx01 to 7.0 U2c --override bootbank`, then `yes <token>`:
                              maintenance mode, install, reboot, back on build 18426014
  5. check esx01              the alert has resolved and the fix list is shorter
More: `shutdown esx02` (through its BMC), `power on esx02`, `maintenance enter esx03 --evacuate`,
`demo release 7.0 U2d`, `demo fix <host>`, `demo reset`, `help`."""


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """The ``demo_fleet`` section: ``step`` (seconds one simulated step takes), ``state_file``."""

    step: Annotated[float, Range(0.01, 60)] = STEP
    state_file: str = STATE_FILE

    @classmethod
    def from_mapping(cls, raw: Any) -> DemoSettings:
        return parse(cls, raw, "demo_fleet")


class DemoWorld:
    def __init__(self, base: Sequence[Host], clock: Clock, settings: DemoSettings, state_file: Path) -> None:
        self.settings = settings
        self.fleet = DemoFleet(base, BuildCatalog.bundled(), clock, state_file)
        self.ops = DemoHostOps(self.fleet, clock, step=settings.step)
        self.bmc = DemoBmc(self.fleet, step=settings.step)  # binds its port on 127.0.0.1: close() it
        self._clock = clock

    @classmethod
    def create(cls, settings: Settings, clock: Clock) -> DemoWorld:
        """The bundled fleet with the ``demo_fleet`` settings; ``ConfigError`` names a bad key."""
        demo = DemoSettings.from_mapping(settings.extra.get("demo_fleet"))
        base = demo_inventory(BuildCatalog.bundled(), clock).hosts()
        return cls(base, clock, demo, settings.resolve(demo.state_file))

    def job_defaults(self) -> dict[str, Any]:
        """Job settings scaled to the step time; the ``jobs`` section still wins key by key."""
        step = self.settings.step
        return {
            "depot_url": DEPOT,
            "guest_timeout": 3 * step,
            "maintenance_timeout": 30 * step,
            "maintenance_retries": 0,
            "task_timeout": 30 * step,
            "reconnect_timeout": 30 * step,
            "bmc_graceful_timeout": 3 * step,
            "bmc_force_timeout": 10 * step,
            "bmc_poll": max(0.05, step / 4),
        }

    @property
    def pending_for(self) -> float:
        """Longer than a reboot (two steps), so a patched host's short absence pages nobody."""
        return max(1.0, 3 * self.settings.step)

    @property
    def loss_after(self) -> float:
        """How long after ``demo break`` the bootbank goes: the precursor's page comes first.

        A loss inhibits a precursor that has not paged yet, so the margin past ``pending_for`` is at
        least two seconds even with very short steps (a busy machine delays the engine's timer).
        """
        return self.pending_for + max(2 * self.settings.step, 2.0)

    def alert_defaults(self) -> dict[str, Any]:
        # each demo host pages alone and at once, so the tour follows one host's story
        return {"for": self.pending_for, "group_wait": 0, "group_by": ["kind", "host"]}

    @staticmethod
    def oncall_defaults(console_user: str) -> dict[str, Any]:
        """You are on call in the demo (a console mention), escalation every few minutes."""
        user = console_user.removeprefix("console:")
        return {
            "people": {"you": {"console": user}},
            "rotation": {
                "members": ["you"],
                "handoff": "weekly",
                "day": "monday",
                "at": "09:00",
                "start": "2024-01-01",
            },
            "escalation": [{"notify": "room"}, {"notify": "oncall"}],
            "repeat": "5m",
        }

    def greeting(self) -> str:
        return TOUR

    async def check_note(self, host: Host, *, expand: bool = False) -> Sequence[Block]:
        """On every ``check`` card (a ``HostNotes``; ``expand`` changes nothing): the host is simulated."""
        return (
            Text(
                f"Demo mode: {host.name} is a simulated host (`demo reset` restores the fleet).", Style.PLAIN
            ),
        )

    async def subscribe_console(self, subscriptions: SubscriptionRepo) -> None:
        for topic in ("alerts", "releases"):
            await subscriptions.add(CONSOLE_ROOM, topic, by="demo", at=self._clock.now())

    async def watch(self, engine: AlertEngine, interval: float = 1.0) -> None:
        """Forever: the fleet's state changes (bootbank, connection) become alert signals."""
        tracker = StateTracker("demo")
        while True:
            for signal in tracker.update(self.fleet.hosts()):
                await engine.ingest(replace(signal, source="demo fleet"))
            await self._clock.sleep(min(interval, self.settings.step))

    async def close(self) -> None:
        await self.bmc.close()
