"""The real bot (``App``, demo inventory, real dispatcher, ``bounce`` test command) on the Slack fake.

Adapters are built the way ``esxbot run`` builds them (``bot.runtime.cli.chat_adapters`` from settings), so
these tests cover the composition root too. ``slack_settings`` is shared with the test that runs
Slack and Matrix in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.chat.slack import SlackAdapter
from bot.config import AuthSettings, Secret, Settings, SlackSettings
from bot.inventory.merged import Inventory
from bot.runtime.app import App
from bot.runtime.cli import chat_adapters
from tests.fixtures.matrix_bot import SPECS
from tests.slack_fake import Message, SlackFake

OPS = "C0OPS0001"
ANN = "U0ANN0001"  # operator
BOB = "U0BOB0001"  # viewer
ROLES = {f"slack:{ANN}": "operator", f"slack:{BOB}": "viewer"}
WAIT = 10.0  # the real dispatcher on a loaded 2-core box


def slack_settings(fake: SlackFake) -> SlackSettings:
    return SlackSettings(
        bot_token=Secret(fake.workspace.bot_token),
        app_token=Secret(fake.workspace.app_token),
        signing_secret=Secret(fake.signing_secret),
        base_url=fake.base_url,
    )


def slack_auth(extra: Mapping[str, str] | None = None) -> AuthSettings:
    return AuthSettings(roles={**ROLES, **(extra or {})}, default_role="viewer")


@dataclass(slots=True)
class SlackBot:
    app: App
    adapter: SlackAdapter
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_slack_bot(
    fake: SlackFake, db_path: Path, *, stale_after: int = 120, inventory: Inventory | None = None
) -> AsyncIterator[SlackBot]:
    settings = Settings(
        database_url=str(db_path),
        demo=True,
        stale_command_age=stale_after,
        auth=slack_auth(),
        slack=slack_settings(fake),
        base_dir=str(db_path.parent),
    )
    app = await App.open(settings, specs=SPECS, inventory=inventory)
    (adapter,) = chat_adapters(app)
    assert isinstance(adapter, SlackAdapter)
    app.add_adapter(adapter)
    task = asyncio.create_task(app.run())
    try:
        await fake.wait_for(lambda: fake.open_connections == 1 or task.done(), timeout=WAIT)
        if task.done():
            task.result()
        yield SlackBot(app, adapter, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.close()


def card_fields(message: Message) -> dict[str, str]:
    """The label → value pairs of every ``fields`` section of a bot message (Block Kit mrkdwn)."""
    found: dict[str, str] = {}
    for block in message.blocks or []:
        for field in block.get("fields", []):
            label, _, value = field["text"].partition("\n")
            found[label.strip("*")] = value
    return found


def block_text(message: Message) -> str:
    """Every text of every block, one per line (for substring assertions)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "text" and isinstance(item, str):
                    out.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message.blocks or [])
    return "\n".join(out)


def actions_blocks(message: Message) -> list[dict[str, Any]]:
    return [b for b in message.blocks or [] if b.get("type") == "actions"]
