"""A whole esxbot over a vcsimlab vCenter (and optionally BMCs) for the host-action job tests.

The dispatcher runs on a fake clock (so confirmations can expire on demand); the job runner runs on
the real clock with short timeouts, because the simulator's host operations take real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bot.actions.bmc import BmcDirectory
from bot.actions.job_settings import JobSettings
from bot.actions.runner import JobRunner
from bot.clock import FakeClock, SystemClock
from bot.messages import Command, Confirm, Conversation, Reply, User
from bot.runtime.app import App
from bot.store.job_records import JobRepo
from bot.vsphere.client import VSphere
from bot.vsphere.host_actions import HostActions, door_for
from bot.vsphere.host_ops import ClusterImageOps
from bot.vsphere.session import Endpoint
from handlers import ALL
from tests.fixtures.bot import OPERATOR, bot_settings
from tests.fixtures.vcsim import Vcsim

SPECS = ALL
PATCH_DAY = datetime(2021, 9, 8, 9, 0, tzinfo=UTC)  # two weeks after 7.0 U2c: past its soak period
SETTINGS = JobSettings(
    depot_url="https://depot.lab.local/VMware-ESXi-{version}-{build}-depot.zip",
    guest_timeout=5.0,
    maintenance_timeout=20.0,
    maintenance_retries=0,
    task_timeout=20.0,
    reconnect_timeout=20.0,
    bmc_graceful_timeout=1.0,
    bmc_force_timeout=20.0,
    bmc_poll=0.2,
)


@dataclass
class LabBot:
    app: App
    clock: FakeClock
    vc: VSphere
    lab: Vcsim
    runner: JobRunner
    settings: JobSettings = SETTINGS
    lifecycle: Mapping[str, ClusterImageOps] = field(default_factory=dict)

    async def say(self, text: str, *, as_user: str = OPERATOR, message_id: str = "m1") -> Reply:
        command = Command(
            user=User(as_user),
            conversation=Conversation(platform="console", room="ops"),
            text=text,
            message_id=message_id,
            sent_at=self.clock.now(),
        )
        return await self.app.dispatcher.handle(command)

    async def confirm(self, text: str, *, as_user: str = OPERATOR) -> Reply:
        preview = await self.say(text, as_user=as_user)
        assert preview.ok, preview.summary
        return await self.say(f"yes {token(preview)}", as_user=as_user)

    def new_runner(self) -> JobRunner:
        """A second runner over the same database, as after a restart of the bot."""
        actions = HostActions(door_for(self.vc), SystemClock(), poll=0.05)
        runner = JobRunner(
            JobRepo(self.app.db),
            self.app.outbox,
            self.app.services.store.audit,
            SystemClock(),
            actions={self.vc.name: actions},
            bmcs=self.runner._bmcs,
            settings=self.settings,
            lifecycle=self.lifecycle,
        )
        self.runner = runner
        self.app.dispatcher.services = replace(self.app.services, jobs=runner)
        return runner

    async def audit(self) -> list[tuple[str, str | None, str]]:
        entries = await self.app.services.store.audit.recent(100)
        return [(e.user_id, e.command, e.outcome) for e in reversed(entries)]


def token(reply: Reply) -> str:
    confirms = [b for b in reply.blocks if isinstance(b, Confirm)]
    assert len(confirms) == 1, reply.summary
    return confirms[0].token


@asynccontextmanager
async def lab_bot(
    lab: Vcsim,
    tmp_path: Path,
    bmcs: BmcDirectory | None = None,
    *,
    settings: JobSettings = SETTINGS,
    lifecycle: Callable[[VSphere], Mapping[str, ClusterImageOps]] | None = None,
) -> AsyncIterator[LabBot]:
    endpoint = Endpoint(
        name="lab",
        host=lab.host,
        port=lab.port,
        user=lab.user,
        password=lab.password,
        ca_file=str(lab.ca_file),
    )
    vc = VSphere(endpoint)
    await vc.refresh()
    clock = FakeClock(PATCH_DAY)
    app = await App.open(bot_settings(tmp_path), clock=clock, inventory=vc, specs=SPECS)
    bot = LabBot(app, clock, vc, lab, runner=None, settings=settings)  # type: ignore[arg-type]
    bot.lifecycle = lifecycle(vc) if lifecycle else {}
    bot.runner = JobRunner(
        JobRepo(app.db), app.outbox, app.services.store.audit, SystemClock(), actions={}, bmcs=bmcs
    )
    bot.new_runner()
    try:
        yield bot
    finally:
        await bot.runner.close()
        await app.close()
        await vc.close()
