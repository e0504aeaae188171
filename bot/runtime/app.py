"""The one composition root: settings → database → services → dispatcher → adapters, and back down.

``App.open`` builds everything without touching the network; ``App.run`` runs the chat adapters,
their outbox delivery and the background loops (vCenter watchers, release polling, alert timers,
syslog) in one ``asyncio.TaskGroup``; ``App.close`` tears down in reverse order.

Sub-systems are configured by sections of the YAML file (``sources``, ``match_rules``, ``alerts``,
``oncall``, ``pager``, ``syslog``, ``bmcs``, ``jobs``, ``releases``, ``demo_fleet``; advisory sources
are ``sources`` entries of the kinds ``vmsa-list``, ``vmsa``, ``cve``, ``kev``), each parsed by its own
schema in ``bot/runtime/sections.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bot.actions.job_settings import JobSettings
from bot.actions.runner import HEARTBEAT, ORPHANED_AFTER, JobRunner
from bot.advisories.poller import AdvisoryPoller
from bot.advisories.service import AdvisoryService, bundled_advisories
from bot.alerts.engine import AlertEngine
from bot.alerts.inhibition import load_inhibit_rules
from bot.alerts.intake import EngineConfig
from bot.alerts.log_scan import HostIndex
from bot.alerts.oncall import parse_oncall
from bot.alerts.pager import pager_senders
from bot.alerts.patterns import load_rules
from bot.alerts.syslog import SyslogConfig, SyslogReceiver
from bot.alerts.vcenter import VCenterAlertWatcher
from bot.alerts.vcenter_signals import StateTracker
from bot.builds import BuildCatalog
from bot.chat.base import ChatAdapter
from bot.chat.outbox import Outbox
from bot.clock import Clock, SystemClock
from bot.command.auth import Policy
from bot.command.dispatcher import Dispatcher, new_ref
from bot.command.services import Services, Store
from bot.command.spec import CommandSpec, registry
from bot.config import ConfigError, Settings
from bot.demo.events import DemoEvents
from bot.demo.world import DemoWorld
from bot.inventory.demo import demo_inventory
from bot.inventory.merged import Inventory, MergedInventory, StaticInventory, find_host
from bot.inventory.static_file import build_lookup, load_inventory
from bot.messages import Command, Reply
from bot.model import Host, Release
from bot.releases.fix_hint import BootFixHint
from bot.releases.match_rules import MatchRuleSet
from bot.releases.service import ReleaseAnnouncer, ReleaseService, bundled_releases
from bot.releases.sources.fetch import Fetcher
from bot.releases.sources.poller import SourcePoller
from bot.runtime.leader import Leadership, SingleInstance, open_leadership, run_while_leader
from bot.runtime.logconfig import Correlation
from bot.runtime.metrics import Metrics
from bot.runtime.sections import read_sections
from bot.runtime.web import Health, WebConfig, serve
from bot.schema import parse
from bot.store.advisory_records import AdvisoryRepo
from bot.store.alert_records import HandledEventRepo
from bot.store.job_records import JobRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.release_records import ReleaseRepo
from bot.store.sql.base import Database
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from bot.vsphere.client import VSphere
from bot.vsphere.host_actions import HostActions, door_for
from bot.vsphere.host_ops import HostOps
from bot.vsphere.host_retrieval import release_lookup
from bot.vsphere.lifecycle import Lifecycle

log = logging.getLogger(__name__)

DEMO_POLICY = {"console:*": "admin"}

Loop = Callable[[], Coroutine[Any, Any, None]]


def make_policy(settings: Settings) -> Policy:
    roles: dict[str, str] = dict(settings.auth.roles)
    if settings.demo_mode and not roles:
        roles = DEMO_POLICY  # the demo's console user may try everything; demo hosts are not real
    return Policy.from_config(roles, settings.auth.default_role)


def _paths(settings: Settings, values: Sequence[Any]) -> list[Path]:
    return [settings.resolve(str(v)) for v in values]


def syslog_config(config: SyslogConfig, settings: Settings) -> SyslogConfig:
    """TLS files relative to the config file."""
    cert, key = config.tls_cert, config.tls_key
    return replace(
        config,
        tls_cert=settings.resolve(str(cert)) if cert else None,
        tls_key=settings.resolve(str(key)) if key else None,
    )


def _simulated(settings: Settings, inventory: Inventory | None) -> bool:
    """Demo mode with nothing real to act on: the simulated fleet answers host operations."""
    return settings.demo_mode and inventory is None and not settings.inventory_file and not settings.vcenters


class HostResolver:
    """Syslog source → inventory host, with the index rebuilt at most every ``ttl`` seconds (floods)."""

    def __init__(self, inventory: Inventory, clock: Clock, ttl: float = 5.0) -> None:
        self._inventory, self._clock, self._ttl = inventory, clock, ttl
        self._index: HostIndex | None = None
        self._built_at = 0.0

    def __call__(self, hostname: str | None, address: str | None) -> Host | None:
        now = self._clock.monotonic()
        if self._index is None or now - self._built_at > self._ttl:
            self._index, self._built_at = HostIndex(self._inventory.hosts()), now
        return self._index.resolve(hostname, address)


@dataclass
class App:
    settings: Settings
    db: Database
    services: Services
    dispatcher: Dispatcher
    outbox: Outbox
    vcenters: tuple[VSphere, ...] = ()
    poller: SourcePoller | None = None
    advisory_poller: AdvisoryPoller | None = None
    fetcher: Fetcher | None = None
    syslog: SyslogReceiver | None = None
    fix_hint: BootFixHint | None = None
    watchers: tuple[VCenterAlertWatcher, ...] = ()
    single_instance: bool = True  # set by run(): False under PostgreSQL leader election
    metrics: Metrics = field(default_factory=Metrics)
    correlation: Correlation = field(default_factory=Correlation)
    adapters: dict[str, ChatAdapter] = field(default_factory=dict)
    closers: list[Loop] = field(default_factory=list)  # extra teardown, in order
    demo: DemoWorld | None = None  # demo mode's simulated fleet (only when nothing real is configured)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        specs: Sequence[CommandSpec] | None = None,
        clock: Clock | None = None,
        inventory: Inventory | None = None,
        correlation: Correlation | None = None,
    ) -> App:
        simulated = _simulated(settings, inventory)
        if specs is None:
            from handlers import ALL
            from handlers.demo import DEMO

            specs = (*ALL, *DEMO) if simulated else ALL
        if settings.demo and settings.hardware:
            raise ConfigError(
                "demo",
                f"true cannot be combined with {', '.join(settings.hardware)}: demo mode makes every console "
                "user an admin over made-up hosts. Remove `demo`, or those settings.",
                settings.config_file or "settings",
            )
        clock = clock or SystemClock()
        demo = DemoWorld.create(settings, clock) if simulated else None
        url = settings.database_url
        try:
            db = await open_database(url if "://" in url else str(settings.resolve(url)))
        except BaseException:
            if demo is not None:
                await demo.close()
            raise
        try:
            await migrate(db)
            app = cls._assemble(settings, db, clock, specs, inventory, demo)
            if app.services.releases is not None:
                await app.services.releases.load_withdrawals()
            if demo is not None:
                await demo.bmc.start()
        except BaseException:
            if demo is not None:
                await demo.close()
            await db.close()
            raise
        if correlation is not None:
            app.correlation = correlation
        app.dispatcher.on_outcome = app.metrics.command
        app.record_metrics()
        app.outbox.on_failed = app.metrics.outbox_failed
        return app

    def record_metrics(self) -> None:
        """The producers report where things happen: polls, refreshes, reconnects, job outcomes."""
        if self.poller is not None:
            self.poller.on_poll = self.metrics.source_poll
        for vc in self.vcenters:
            vc.on_refresh = self.metrics.inventory_refreshed
            vc.on_reconnect = partial(self.metrics.reconnect, "vcenter")
        if self.services.jobs is not None:
            self.services.jobs.on_outcome = self.metrics.job

    @property
    def database_url(self) -> str:
        url = self.settings.database_url
        return url if "://" in url else str(self.settings.resolve(url))

    async def handle(self, command: Command) -> Reply:
        """The dispatcher, with one correlation id on every log line of the command."""
        ref = new_ref()
        with self.correlation.scope("cmd", ref):  # the log's id is the ref people see in the reply
            return await self.dispatcher.handle(command, ref=ref)

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        db: Database,
        clock: Clock,
        specs: Sequence[CommandSpec],
        inventory: Inventory | None,
        demo: DemoWorld | None = None,
    ) -> App:
        commands = registry(specs)  # first: a bad command table must fail before anything is opened
        sections = read_sections(settings)
        catalog = BuildCatalog.bundled()
        if demo is not None:
            inventory = demo.fleet
        store = Store.over(db)
        outbox = Outbox(OutboxRepo(db), store.subscriptions, clock)
        vcenters = tuple(
            VSphere.from_settings(vc, release=release_lookup(catalog), clock=clock)
            for vc in settings.vcenters
        )
        if inventory is None:
            static: Inventory | None = None
            if settings.inventory_file:
                path = settings.resolve(settings.inventory_file)
                static = StaticInventory(
                    load_inventory(path, build_lookup(catalog)), f"static:{path}", clock.now()
                )
            elif settings.demo_mode:
                static = demo_inventory(catalog, clock)
            inventory = (
                MergedInventory(vcenters, static)
                if vcenters
                else (static or StaticInventory([], "none", clock.now()))
            )
        live = inventory

        releases = ReleaseService(
            catalog,
            MatchRuleSet.load(_paths(settings, sections.match_rules)),
            live,
            repo=ReleaseRepo(db),
            bundled=bundled_releases() if settings.demo_mode else (),
            soak=timedelta(seconds=sections.releases.soak),
        )
        hint = BootFixHint(releases)
        alert_config, oncall = sections.alerts, sections.oncall
        if demo is not None:  # the demo pages "you" and waits out a simulated reboot; config still wins
            wanted = {**demo.alert_defaults(), **(settings.extra.get("alerts") or {})}
            alert_config = EngineConfig.from_extra(wanted)
            if settings.extra.get("oncall") is None:
                oncall = parse_oncall(demo.oncall_defaults(settings.console_user))
        senders, targets = pager_senders(sections.pager)
        engine = AlertEngine(
            db,
            outbox,
            clock,
            hosts=lambda name: find_host(live.hosts(), name),
            policy=oncall,
            config=replace(alert_config, forward_to=alert_config.forward_to + targets),
            fix_hint=hint,
            inhibitions=load_inhibit_rules(_paths(settings, alert_config.inhibit_rule_files)),
        )
        actions: dict[str, HostOps] = {vc.name: HostActions(door_for(vc), clock) for vc in vcenters}
        bmcs, job_settings = sections.bmcs, sections.jobs
        if demo is not None:  # the simulated hosts answer host operations; their BMCs are internal
            actions, bmcs = {"demo": demo.ops}, demo.bmc.directory()
            wanted_jobs = {**demo.job_defaults(), **(settings.extra.get("jobs") or {})}
            job_settings = parse(JobSettings, wanted_jobs, "jobs")
        runner = JobRunner(
            JobRepo(db),
            outbox,
            store.audit,
            clock,
            actions=actions,
            lifecycle={vc.name: Lifecycle(vc.endpoint, clock) for vc in vcenters},
            bmcs=bmcs,
            settings=job_settings,
        )
        sources = sections.sources
        fetcher = Fetcher.create() if sources else None
        announcer = ReleaseAnnouncer(releases, outbox)

        async def announce(release: Release, *, update: bool) -> None:
            await announcer(release, update=update)
            await hint.refresh()  # alert pages name the newest fix for the boot device

        poller = (
            SourcePoller(sources, fetcher, ReleaseRepo(db), clock, catalog, announce=announce)
            if fetcher is not None
            else None
        )
        demo_advisories, demo_kev = bundled_advisories(catalog) if settings.demo_mode else ([], [])
        advisories = AdvisoryService(
            catalog,
            live,
            repo=AdvisoryRepo(db),
            bundled=demo_advisories,
            bundled_kev=demo_kev,
            outbox=outbox,
            engine=engine,
        )
        advisory_poller = (
            AdvisoryPoller(
                sources, fetcher, ReleaseRepo(db), AdvisoryRepo(db), store.kv, clock, catalog, advisories
            )
            if fetcher is not None
            else None
        )
        receiver = None
        if sections.syslog is not None:
            rules = load_rules(_paths(settings, sections.syslog.rule_files))
            receiver = SyslogReceiver(
                syslog_config(sections.syslog, settings), rules, HostResolver(live, clock), engine.ingest_log
            )
        events = None
        if demo is not None:
            events = DemoEvents(
                demo.fleet,
                clock,
                loss_after=demo.loss_after,
                engine=engine,
                releases=releases,
                release_repo=ReleaseRepo(db),
                announce=announce,
                subscriptions=store.subscriptions,
                jobs=runner,
            )
        services = Services(
            settings=settings,
            clock=clock,
            store=store,
            inventory=live,
            catalog=catalog,
            host_notes=(releases.host_notes, advisories.host_notes, demo.check_note)
            if demo
            else (releases.host_notes, advisories.host_notes),
            commands=commands,
            jobs=runner,
            alerts=engine,
            releases=releases,
            sources=poller,
            advisories=advisories,
            demo=events,
        )
        app = cls(
            settings,
            db,
            services,
            Dispatcher(commands, services, make_policy(settings)),
            outbox,
            vcenters=vcenters,
            poller=poller,
            advisory_poller=advisory_poller if advisory_poller and advisory_poller.sources else None,
            fetcher=fetcher,
            syslog=receiver,
            fix_hint=hint,
            watchers=tuple(VCenterAlertWatcher(vc, engine, HandledEventRepo(db), clock) for vc in vcenters),
            demo=demo,
        )
        if demo is not None and events is not None:
            app.closers += [events.close, demo.close]
        for sender in senders:
            app.add_adapter(sender)
            app.closers.append(sender.close)
        return app

    def add_adapter(self, adapter: ChatAdapter) -> None:
        self.adapters[adapter.platform] = adapter

    async def prepare(self) -> None:
        """Start-up work that reads the database: stored releases and fix hints."""
        if self.poller is not None:
            await self.poller.restore()
        if self.fix_hint is not None:
            await self.fix_hint.refresh()
        if self.demo is not None and set(self.adapters) & {"console", "slack", "matrix"} == {"console"}:
            await self.demo.subscribe_console(self.services.store.subscriptions)  # the console is the chat

    async def _recover_jobs(self) -> None:
        """Leader-only: jobs left running by a dead process are reported interrupted, never re-run.

        A single instance knows at start that nobody else can be running them; with several
        instances a job belongs to a dead runner only when its heartbeats have stopped.
        """
        runner = self.services.jobs
        if runner is None:
            return
        while True:
            stale_after = None if self.single_instance else ORPHANED_AFTER
            for job in await runner.recover(stale_after=stale_after):
                log.warning(
                    "job #%d lost its runner (restart or dead instance); reported, not re-run", job.id
                )
            if self.single_instance:
                return
            await self.services.clock.sleep(HEARTBEAT * 3)

    def background(self) -> dict[str, Loop]:
        """The loops only the leader runs: watchers, polling, alert timers, outbox delivery, Matrix sync."""
        loops: dict[str, Loop] = {"job-recovery": self._recover_jobs}
        watchers = {w.name: w for w in self.watchers}
        for vc in self.vcenters:  # the watcher runs the vCenter's watch loop and turns changes into alerts
            watcher = watchers.get(vc.name)
            loops[f"vcenter-{vc.name}"] = partial(watcher.serve, vc.run) if watcher else vc.run
        if self.poller is not None:
            loops["sources"] = self.poller.run
        if self.advisory_poller is not None:
            loops["advisory-sources"] = self.advisory_poller.run
        if self.services.alerts is not None:
            loops["alerts"] = self.services.alerts.run
        if self.syslog is not None:
            loops["syslog"] = self.syslog.run
        for name in self.adapters:
            loops[f"outbox-{name}"] = self._delivery(name)
        if "matrix" in self.adapters:  # one syncing instance: next_batch is shared in the database
            loops["chat-matrix"] = self._chat(self.adapters["matrix"])
        loops["metrics"] = self._metrics_loop
        if self.demo is not None and self.services.alerts is not None:
            loops["demo-fleet"] = partial(self.demo.watch, self.services.alerts)
        elif self.settings.demo_mode and not self.vcenters:
            loops["demo-signals"] = self._demo_signals
        return loops

    async def _demo_signals(self) -> None:
        """Demo mode: the bundled fleet's states (esx02 has lost its bootbank) raise alerts once."""
        engine = self.services.alerts
        if engine is None:
            return
        for signal in StateTracker("demo").update(self.services.inventory.hosts()):
            if not signal.clear:
                await engine.ingest(replace(signal, source="demo inventory"))

    def _delivery(self, platform: str) -> Loop:
        async def deliver() -> None:
            await self.outbox.run(self.adapters, platform)

        return deliver

    def _chat(self, adapter: ChatAdapter) -> Loop:
        async def chat() -> None:
            await adapter.run(self.handle)

        return chat

    async def _metrics_loop(self) -> None:
        """Counters other parts keep themselves, copied into ``/metrics`` every few seconds."""
        seen_received = seen_dropped = 0
        while True:
            if self.syslog is not None:
                stats = self.syslog.stats()
                dropped = stats.dropped_garbage + stats.dropped_ratelimit + stats.dropped_oversize
                self.metrics.syslog_line(count=stats.received - seen_received)
                self.metrics.syslog_line(dropped=True, count=dropped - seen_dropped)
                seen_received, seen_dropped = stats.received, dropped
            await self.services.clock.sleep(5.0)

    def health(self, leadership: Leadership | None) -> Health:
        alerts = self.services.alerts

        async def alert_counts() -> Mapping[str, int]:
            return await alerts.alerts.counts() if alerts is not None else {}

        def probe(vc: VSphere) -> Callable[[], Coroutine[Any, Any, bool]]:
            async def alive() -> bool:
                return vc.status().connected

            return alive

        return Health(
            db=self.db,
            adapters=self.adapters,
            metrics=self.metrics,
            vcenters={vc.name: probe(vc) for vc in self.vcenters},
            leadership=leadership,
            outbox_stats=OutboxRepo(self.db).stats,
            alert_counts=alert_counts,
            config=WebConfig(
                host=self.settings.web_host,
                port=self.settings.web_port,
                leader_only=frozenset({"matrix"}),
                details_for_all=self.settings.web_details,
            ),
            clock=self.services.clock,
        )

    async def run(self) -> None:
        """Until the first chat adapter that runs everywhere returns (console EOF) or cancellation.

        Every instance answers Slack and console commands; the leader (PostgreSQL advisory lock, or
        the single-instance lock on a SQLite file) also runs ``background()``.
        """
        chats = {n: a for n, a in self.adapters.items() if n in ("console", "slack", "matrix")}
        if not chats:
            raise RuntimeError("no chat adapter configured")
        leadership = await open_leadership(self.database_url, self.db, name=self.settings.leader_name)
        self.single_instance = isinstance(leadership, SingleInstance)
        try:
            await self.prepare()
            async with asyncio.TaskGroup() as group:
                others = [
                    group.create_task(leadership.run(), name="leadership"),
                    group.create_task(run_while_leader(leadership, self.background()), name="leader-loops"),
                ]
                if self.services.jobs is not None:  # every instance runs the jobs it was given
                    others.append(group.create_task(self.services.jobs.heartbeat(), name="job-heartbeat"))
                if self.settings.web_port:
                    others.append(group.create_task(serve(self.health(leadership)), name="web"))
                everywhere = [
                    group.create_task(a.run(self.handle), name=f"chat-{n}")
                    for n, a in chats.items()
                    if n != "matrix"
                ]
                await asyncio.wait(everywhere or others, return_when=asyncio.FIRST_COMPLETED)
                for task in [*everywhere, *others]:
                    task.cancel()
        finally:
            if isinstance(leadership, SingleInstance):
                leadership.release()  # also when cancelled before its task started

    async def close(self) -> None:
        if self.services.jobs is not None:
            await self.services.jobs.close()
        if self.syslog is not None:
            await self.syslog.close()
        for closer in self.closers:
            await closer()
        if self.fetcher is not None:
            await self.fetcher.close()
        for vc in self.vcenters:
            await vc.close()
        await self.db.close()
