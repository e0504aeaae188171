"""The one composition root: settings → database → services → dispatcher → adapters, and back down.

``App.open`` builds everything that does not talk to the outside; ``App.run`` runs the adapters and
background loops in one ``asyncio.TaskGroup``; ``App.close`` tears down in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import yaml

from bot.auth import Policy
from bot.chat.base import ChatAdapter
from bot.clock import Clock, SystemClock
from bot.commands import CommandSpec, registry
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.esxi import BuildCatalog
from bot.inventory import Inventory, StaticInventory
from bot.inventory_file import BuildLookup, load_inventory, parse_inventory
from bot.outbox import Outbox
from bot.services import Services, Store
from bot.store.db import Database, open_database
from bot.store.migrate import migrate
from bot.store.outbox import OutboxRepo

log = logging.getLogger(__name__)

DEMO_POLICY = {"console:*": "admin"}


def build_lookup(catalog: BuildCatalog) -> BuildLookup:
    def lookup(build: int) -> tuple[str | None, str | None] | None:
        known = catalog.lookup(build)
        return (known.version, known.name) if known else None

    return lookup


def demo_inventory(catalog: BuildCatalog, clock: Clock) -> StaticInventory:
    text = resources.files("bot.data").joinpath("demo/inventory.yaml").read_text(encoding="utf-8")
    hosts = parse_inventory(yaml.safe_load(text), "demo inventory", build_lookup(catalog))
    return StaticInventory(hosts, "demo", clock.now())


def make_inventory(settings: Settings, catalog: BuildCatalog, clock: Clock) -> Inventory:
    if settings.inventory_file:
        path = settings.resolve(settings.inventory_file)
        return StaticInventory(load_inventory(path, build_lookup(catalog)), f"static:{path}", clock.now())
    return demo_inventory(catalog, clock)


def make_policy(settings: Settings) -> Policy:
    roles = dict(settings.auth.roles)
    if settings.demo_mode and not roles:
        roles = DEMO_POLICY  # the demo's console user may try everything; demo hosts are not real
    return Policy.from_config(roles, settings.auth.default_role)


@dataclass
class App:
    settings: Settings
    db: Database
    services: Services
    dispatcher: Dispatcher
    outbox: Outbox
    adapters: dict[str, ChatAdapter] = field(default_factory=dict)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        specs: Sequence[CommandSpec] | None = None,
        clock: Clock | None = None,
        inventory: Inventory | None = None,
    ) -> App:
        if specs is None:
            from handlers import ALL

            specs = ALL
        clock = clock or SystemClock()
        db = await open_database(
            settings.database_url
            if "://" in settings.database_url
            else str(settings.resolve(settings.database_url))
        )
        try:
            await migrate(db)
            catalog = BuildCatalog.bundled()
            table = registry(specs)
            store = Store.over(db)
            services = Services(
                settings=settings,
                clock=clock,
                store=store,
                inventory=inventory or make_inventory(settings, catalog, clock),
                catalog=catalog,
                commands=table,
            )
        except BaseException:
            await db.close()
            raise
        outbox = Outbox(OutboxRepo(db), store.subscriptions, clock)
        return cls(settings, db, services, Dispatcher(table, services, make_policy(settings)), outbox)

    def add_adapter(self, adapter: ChatAdapter) -> None:
        self.adapters[adapter.platform] = adapter

    async def run(self) -> None:
        """Run every adapter and its outbox delivery until the first adapter returns (console EOF)."""
        if not self.adapters:
            raise RuntimeError("no chat adapter configured")
        async with asyncio.TaskGroup() as group:
            delivery = [
                group.create_task(self.outbox.run(self.adapters, name), name=f"outbox-{name}")
                for name in self.adapters
            ]
            adapters = [
                group.create_task(a.run(self.dispatcher.handle), name=f"chat-{name}")
                for name, a in self.adapters.items()
            ]
            await asyncio.wait(adapters, return_when=asyncio.FIRST_COMPLETED)
            for task in [*adapters, *delivery]:
                task.cancel()

    async def close(self) -> None:
        await self.db.close()
