"""One bot process on Slack (fake), Matrix (real Synapse) and the console at once.

Each command is answered on the platform it came from; a notification published for a topic reaches
the rooms subscribed to it on each platform exactly once, and nothing crosses platforms.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.chat.console import ConsoleAdapter
from bot.chat.matrix import MatrixAdapter
from bot.chat.slack import SlackAdapter
from bot.config import MatrixSettings, Secret, Settings
from bot.messages import Reply
from bot.runtime.app import App
from bot.runtime.cli import chat_adapters
from tests.fixtures.matrix_bot import HOST, SPECS, ask, room_with_bot
from tests.fixtures.synapse import MatrixPerson, SynapseServer, person
from tests.slack_bot import ANN, OPS, WAIT, slack_auth, slack_settings
from tests.slack_fake import SlackFake

NEWS = "ESXi 7.0 Update 3 is out: 4 fixes matter to this fleet"


@dataclass(slots=True)
class Console:
    """The console adapter's terminal: lines written to its stdin, its stdout kept for reading."""

    writer: TextIO
    output: io.StringIO

    def type(self, line: str) -> None:
        self.writer.write(line + "\n")
        self.writer.flush()

    async def wait_for(self, text: str, *, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.output.getvalue():
                await asyncio.sleep(0.02)


@dataclass(slots=True)
class Everywhere:
    app: App
    console: Console
    matrix: MatrixAdapter


@contextlib.asynccontextmanager
async def running_everywhere(
    fake: SlackFake, synapse: SynapseServer, db_path: Path
) -> AsyncIterator[Everywhere]:
    human = synapse.human.user_id
    settings = Settings(
        database_url=str(db_path),
        demo=True,
        auth=slack_auth({f"matrix:{human}": "operator"}),
        slack=slack_settings(fake),
        matrix=MatrixSettings(
            homeserver=synapse.base_url,
            user_id=synapse.bot.user_id,
            access_token=Secret(synapse.bot.access_token),
            allowed_users=(human,),
        ),
        base_dir=str(db_path.parent),
    )
    app = await App.open(settings, specs=SPECS)
    adapters = chat_adapters(app)
    assert sorted(type(a).__name__ for a in adapters) == ["MatrixAdapter", "SlackAdapter"]
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    output = io.StringIO()
    for adapter in (
        *adapters,
        ConsoleAdapter(settings.console_user, app.services.clock, stdin=reader, stdout=output),
    ):
        app.add_adapter(adapter)
    matrix = app.adapters["matrix"]
    assert isinstance(matrix, MatrixAdapter) and isinstance(app.adapters["slack"], SlackAdapter)
    task = asyncio.create_task(app.run())
    try:
        async with asyncio.timeout(20):
            while not (matrix.health().connected and fake.open_connections == 1):
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield Everywhere(app, Console(writer, output), matrix)
    finally:
        writer.close()  # console EOF: App.run returns by itself, and the reader thread ends
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=5)
        reader.close()
        await app.close()


def bot_messages(someone: MatrixPerson, room: str, bot_id: str) -> list[dict[str, Any]]:
    return [
        e
        for r, e in someone.events
        if r == room and e.get("type") == "m.room.message" and e["sender"] == bot_id
    ]


async def test_one_process_answers_each_platform_and_fans_out_notifications(
    slack_fake: SlackFake, synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_everywhere(slack_fake, synapse_server, tmp_path / "bot.db") as bot,
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)

        await slack_fake.slash("check esx01", user=ANN)
        on_matrix = await ask(ann, room, f"!esx check {HOST}", bot_id)
        bot.console.type("hosts")
        await bot.console.wait_for("esx02.lab.local")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=WAIT)
        assert "build 17867351" in on_matrix["content"]["body"]
        assert "ran `/esx check esx01`" in str(slack_fake.bot_messages(OPS)[0].blocks)

        subscribed_matrix = await ask(ann, room, "!esx subscribe releases", bot_id)
        await slack_fake.slash("subscribe releases", user=ANN)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 2, timeout=WAIT)
        for answer in (subscribed_matrix["content"]["body"], slack_fake.bot_messages(OPS)[1].text):
            assert "will hear about new ESXi releases" in answer

        notice = Reply.text(NEWS)
        rooms = await bot.app.outbox.publish("releases", notice, key="release-7.0u3")
        assert sorted(rooms) == sorted([f"slack:{OPS}", f"matrix:{room}"])
        assert await bot.app.outbox.publish("releases", notice, key="release-7.0u3") == rooms  # idempotent
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 3, timeout=WAIT)
        await ann.wait_for(
            lambda r, e: r == room and e.get("sender") == bot_id and e["content"].get("body") == NEWS
        )
        mark = len(ann.events)
        bot.console.type("help")  # a last round trip on every platform before counting
        await bot.console.wait_for("subscribe")
        await ask(ann, room, "!esx subscriptions", bot_id)
        await slack_fake.slash("subscriptions", user=ANN)
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 4, timeout=WAIT)
        assert mark < len(ann.events)

    slack = slack_fake.bot_messages()
    matrix_bodies = [e["content"]["body"] for e in bot_messages(ann, room, bot_id)]
    console = bot.console.output.getvalue()
    assert [m.channel for m in slack] == [OPS] * 4
    assert slack[0].text.startswith(f"{HOST}: ESXi 7.0 Update 2a build 17867351")
    assert "will hear about" in slack[1].text
    assert [m.text for m in slack[2:]] == [NEWS, "Subscribed: releases"]
    assert matrix_bodies[0].startswith(HOST) and "will hear about" in matrix_bodies[1]
    assert matrix_bodies[2:] == [NEWS, "Subscribed: releases"]
    assert NEWS not in console and "will hear about" not in console and "Boot device" not in console
    assert not any("esx02.lab.local" in m.text for m in slack)  # the console's `hosts` stayed there
    assert not any("esx02.lab.local" in body for body in matrix_bodies)
