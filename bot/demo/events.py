"""Events on demand for the demo: a release arrives, a host loses its bootbank and gets it back, reset.

Each event enters esxbot where the real one would: a release is stored and announced exactly as
the source poller does it; a bootbank loss is ESXi log lines (our own text in the shape ESXi
writes) parsed and matched by the real log rules and fed to the alert engine as the syslog
receiver feeds it, while the simulated host's bootbank goes away so the fleet's state says so
too. ``DemoEvents`` is the ``bot.command.services.DemoControls`` the ``demo`` commands use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC

from bot.actions.runner import JobRunner
from bot.alerts.engine import AlertEngine
from bot.alerts.intake import Signal
from bot.alerts.logline import parse_line
from bot.alerts.patterns import LogRuleSet, builtin_rules
from bot.alerts.signals import detect
from bot.clock import Clock
from bot.demo.fleet import DemoFleet
from bot.messages import Reply, Style
from bot.model import Host, JobState, Release
from bot.releases.service import ReleaseService
from bot.store.release_records import ReleaseRepo
from bot.store.subscriptions import SubscriptionRepo

log = logging.getLogger(__name__)

Announce = Callable[..., Awaitable[None]]  # (release, *, update) as the source poller calls it

PRECURSORS = (
    "vmkernel",
    'cpu3:2097664)WARNING: NMP: nmpDeviceAttemptFailover:640: NMP device "{device}" state in doubt; '
    "requested fast path state update...",
)
LOSS = (
    "vobd",
    "[esx.problem.storage.connectivity.lost] Lost connectivity to storage device {device}. "
    "Path {adapter}:C0:T0:L0 is down. Affected datastores: Unknown.",
)
BOOTBANK = ("esxcfg-init", "ALERT: Bootbank cannot be found at path '/bootbank'")
RECOVERY = (
    "vobd",
    "[esx.clear.storage.connectivity.restored] Connectivity to storage device {device} "
    "(Datastores: Unknown) restored. Path {adapter}:C0:T0:L0 is active again.",
)


class DemoEvents:
    def __init__(
        self,
        fleet: DemoFleet,
        clock: Clock,
        *,
        loss_after: float,
        engine: AlertEngine,
        releases: ReleaseService,
        release_repo: ReleaseRepo,
        announce: Announce,
        subscriptions: SubscriptionRepo,
        jobs: JobRunner,
    ) -> None:
        self._fleet = fleet
        self._clock = clock
        self._loss_after = loss_after
        self._engine = engine
        self._releases = releases
        self._repo = release_repo
        self._announce = announce
        self._subs = subscriptions
        self._jobs = jobs
        self._rules = LogRuleSet(builtin_rules())
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def release(self, name: str) -> Reply:
        release = await self._releases.find(name)
        if release is None or not name.strip():
            known = ", ".join(r.name for r in await self._releases.releases())
            return Reply.error(f"No bundled release `{name[:40]}`; the demo has {known}.")
        new = await self._repo.save(release, source="demo", now=self._clock.now())
        await self._announce(release, update=False)
        rooms = await self._subs.rooms("releases")
        where = (
            f"to {len(rooms)} room(s) subscribed to releases"
            if rooms
            else "to nobody: no room is subscribed (`subscribe releases`)"
        )
        again = "" if new else " It was announced before, so nobody hears it twice."
        text = (
            f"Demo: {_label(release)} published as if a release source had just seen it; "
            f"announced {where}.{again}"
        )
        return Reply.text(text, style=Style.SUCCESS)

    async def break_host(self, host: Host) -> Reply:
        sim = self._fleet.host(host.name)
        device = host.boot_device.device
        if sim is None or device is None:
            return Reply.error(f"{host.name} has no known boot device to break.")
        if sim.connection != "connected" or not sim.bootbank:
            return Reply.error(
                f"{host.name} is {sim.connection} with its bootbank "
                f"{'mounted' if sim.bootbank else 'already lost'}: nothing to break "
                "(`demo fix`, `demo reset`)."
            )
        await self._log(host, PRECURSORS)
        self._spawn(self._lose(host), f"demo-break-{host.name}")
        return Reply.text(
            f"Demo: {host.name}'s boot device ({device}) starts failing: a precursor log line now, "
            f"the bootbank is lost in about {self._loss_after:.0f} s. Watch for the page.",
            style=Style.WARNING,
        )

    async def _lose(self, host: Host) -> None:
        await self._clock.sleep(self._loss_after)
        sim = self._fleet.host(host.name)
        if sim is None or not sim.bootbank or sim.connection != "connected":
            return  # fixed, reset or rebooted in the meantime
        sim.bootbank = False
        self._fleet.save()
        await self._log(host, LOSS)
        await self._log(host, BOOTBANK)

    async def fix_host(self, host: Host) -> Reply:
        sim = self._fleet.host(host.name)
        if sim is None or sim.bootbank:
            return Reply.error(f"{host.name}'s bootbank is mounted: nothing to fix.")
        if sim.connection != "connected":
            short = host.name.split(".")[0]
            return Reply.error(
                f"{host.name} is {sim.connection}: `shutdown {short}`, then `power on {short}`; "
                "a fresh boot finds its USB device again."
            )
        sim.bootbank = True
        self._fleet.save()
        await self._log(host, RECOVERY)
        return Reply.text(
            f"Demo: {host.name}'s USB device is back and /bootbank is mounted again.", style=Style.SUCCESS
        )

    async def reset(self) -> Reply:
        running = [j.id for j in await self._jobs.repo.in_state(JobState.RUNNING)]
        if running:
            jobs = ", ".join(f"#{i}" for i in running)
            return Reply.error(f"Job(s) {jobs} still running: `cancel` them or let them end first.")
        for task in self._tasks:
            task.cancel()
        self._fleet.reset()
        for host in self._fleet.hosts():
            if host.bootbank_mounted:  # a break that never reached the loss leaves its precursor open
                await self._engine.ingest(Signal(host.name, "bootbank-loss", clear=True, source="demo reset"))
        return Reply.text(
            "Demo: the fleet is back as it started (builds, bootbanks, power, maintenance mode, VMs). "
            "Alerts resolve as the hosts report healthy again; jobs and the audit log stay.",
            style=Style.SUCCESS,
        )

    async def _log(self, host: Host, template: tuple[str, str]) -> None:
        """One ESXi log line about ``host`` through the real parser, rules and alert intake."""
        app, text = template
        adapter = host.boot_device.adapter or "vmhba32"
        message = text.format(device=host.boot_device.device, adapter=adapter)
        stamp = self._clock.now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        raw = f"<{1 * 8 + 3}>1 {stamp} {host.name} {app} - - - {message}"
        line = parse_line(raw)
        if line is None:
            log.warning("demo: could not parse its own log line %r", raw[:120])
            return
        for sig in detect(self._rules, line, host=host, host_name=host.name, text=raw, source="demo"):
            await self._engine.ingest_log(sig)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("demo event %s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _label(release: Release) -> str:
    return f"{release.name} (build {release.build})"
