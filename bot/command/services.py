"""The bundle of services a handler may use, built once by ``bot.runtime.app`` and passed in ``Context``.

Sub-systems that are not configured are ``None``; handlers say so instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.builds import BuildCatalog
from bot.clock import Clock
from bot.command.auth import Role
from bot.config import Settings
from bot.inventory.merged import Inventory
from bot.messages import Block, Reply
from bot.model import Host
from bot.store.audit import AuditRepo
from bot.store.confirmations import ConfirmationRepo
from bot.store.inbound import InboundRepo
from bot.store.kv import KeyValueRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database
from bot.store.subscriptions import SubscriptionRepo

if TYPE_CHECKING:
    from bot.actions.runner import JobRunner
    from bot.advisories.service import AdvisoryService
    from bot.alerts.engine import AlertEngine
    from bot.releases.service import ReleaseService
    from bot.releases.sources.poller import SourcePoller


class CommandInfo(Protocol):
    """What ``help`` reads of a registered command (``bot.command.spec.CommandSpec`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def help(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def confirm(self) -> bool: ...

    def usage(self) -> str: ...

    def brief(self) -> str: ...


class HostNotes(Protocol):
    """Adds blocks to a host's ``check`` card (pending fixes, open alerts, running jobs); ``expand``:
    the user asked for everything (``check <host> --all``)."""

    async def __call__(self, host: Host, *, expand: bool = False) -> Sequence[Block]: ...


class ConfirmGate(Protocol):
    """Runs or drops a pending confirmation on behalf of the user answering it."""

    async def accept(self, token: str) -> Reply: ...

    async def decline(self, token: str) -> Reply: ...


class DemoControls(Protocol):
    """Demo mode's events on demand (``bot.demo.events.DemoEvents``); only the ``demo`` commands use it."""

    async def release(self, name: str) -> Reply: ...

    async def break_host(self, host: Host) -> Reply: ...

    async def fix_host(self, host: Host) -> Reply: ...

    async def reset(self) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Store:
    db: Database
    audit: AuditRepo
    confirmations: ConfirmationRepo
    subscriptions: SubscriptionRepo
    inbound: InboundRepo
    kv: KeyValueRepo
    outbox: OutboxRepo

    @classmethod
    def over(cls, db: Database) -> Store:
        return cls(
            db=db,
            audit=AuditRepo(db),
            confirmations=ConfirmationRepo(db),
            subscriptions=SubscriptionRepo(db),
            inbound=InboundRepo(db),
            kv=KeyValueRepo(db),
            outbox=OutboxRepo(db),
        )


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    clock: Clock
    store: Store
    inventory: Inventory
    catalog: BuildCatalog
    host_notes: tuple[HostNotes, ...] = ()
    commands: Mapping[str, CommandInfo] = field(default_factory=dict)
    jobs: JobRunner | None = None  # host actions (patch, shutdown, …); None: no vCenter/BMC wired
    alerts: AlertEngine | None = None  # None: alerting not configured
    releases: ReleaseService | None = None  # release notes, matching, announcements
    sources: SourcePoller | None = None  # configured release sources; None: none configured
    advisories: AdvisoryService | None = None  # security advisories matched to hosts
    demo: DemoControls | None = None  # the simulated fleet's events; None outside demo mode
