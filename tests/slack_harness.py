"""A running ``SlackAdapter`` against the ``SlackFake``, with a small command handler that records
what it was asked (the real dispatcher needs the full service graph; this keeps the tests on the
transport). Used by tests/test_slack_*.py and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.chat.slack import SlackAdapter
from bot.config import Secret, SlackSettings
from bot.messages import Command, Confirm, Fields, Reply, Style, Text
from bot.store.inbound import InboundRepo
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import migrate
from tests.slack_fake import SlackFake


@dataclass(slots=True)
class Recorder:
    """Answers ``check``, ``patch`` (with a confirmation), ``yes``/``no``, ``slow``; records commands."""

    commands: list[Command] = field(default_factory=list)

    async def __call__(self, command: Command) -> Reply:
        self.commands.append(command)
        verb, _, rest = command.text.partition(" ")
        match verb:
            case "check":
                card = Fields((("Build", "17867351"), ("Boot", "usb")), title=rest)
                return Reply(f"{rest}: affected", (card,))
            case "patch":
                expires = datetime.now(UTC) + timedelta(minutes=5)
                return Reply(f"Patch {rest}?", (Confirm("tok1", f"Patch {rest}", expires),))
            case "yes":
                return Reply.text(f"confirmed {rest}", style=Style.SUCCESS)
            case "no":
                return Reply.text(f"cancelled {rest}")
            case "slow":
                return Reply("working", (Text("step 1 of 3"),), in_thread=True)
        return Reply.error(f"unknown command {verb}")


def is_mutating(text: str) -> bool:
    return text.split(maxsplit=1)[0] in {"patch", "yes"} if text.split() else False


@asynccontextmanager
async def running_adapter(
    fake: SlackFake, tmp_path: Path, *, mode: str = "socket", stale_after: float = 120.0
) -> AsyncIterator[tuple[SlackAdapter, Recorder]]:
    db = await open_database(str(tmp_path / "slack.db"))
    await migrate(db)
    settings = SlackSettings(
        bot_token=Secret(fake.workspace.bot_token),
        app_token=Secret(fake.workspace.app_token),
        signing_secret=Secret(fake.signing_secret),
        mode=mode,
        http_port=0,
        base_url=fake.base_url,
    )
    adapter = SlackAdapter(settings, InboundRepo(db), mutating=is_mutating, stale_after=stale_after)
    recorder = Recorder()
    task = asyncio.create_task(adapter.run(recorder))
    try:
        if mode == "socket":
            await fake.wait_for(lambda: fake.open_connections == 1)
        else:
            async with asyncio.timeout(5):
                while not adapter.health().connected:
                    await asyncio.sleep(0.01)
        yield adapter, recorder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()
