"""The Matrix adapter across restarts, redeliveries, rate limits and network loss, against real Synapse."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from bot.chat.matrix import MatrixAdapter
from bot.chat.matrix_events import MatrixFatal
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.config import MatrixSettings, Secret
from bot.messages import Reply
from bot.store.kv import KeyValueRepo
from bot.store.sql.migrate import migrate
from bot.store.sql.sqlite import SqliteDatabase
from tests.fixtures.matrix_bot import HOST, SPECS, ask, room_with_bot, running_bot
from tests.fixtures.synapse import MatrixPerson, SynapseServer, person


def _replies_to(ann: MatrixPerson, room: str, bot_id: str, event_id: str) -> list[dict[str, Any]]:
    return [
        e
        for r, e in ann.events
        if r == room
        and e["sender"] == bot_id
        and e["type"] == "m.room.message"
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id
    ]


async def _inbox_state(db_path: Path, event_id: str) -> str | None:
    db = await SqliteDatabase.open(db_path)
    try:
        row = await db.fetchone("SELECT state FROM matrix_inbox WHERE event_id = ?", (event_id,))
        return None if row is None else str(row["state"])
    finally:
        await db.close()


async def test_commands_sent_while_down_read_only_run_stale_host_changes_do_not(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id, db_path = synapse_server.bot.user_id, tmp_path / "bot.db"
    async with person(synapse_server, synapse_server.human) as ann:
        async with running_bot(synapse_server, db_path):
            room = await room_with_bot(ann, bot_id)
        check = await ann.say(room, f"!esx check {HOST}")
        bounce = await ann.say(room, "!esx bounce esx02.lab.local")
        await asyncio.sleep(1.2)  # older than stale_after below
        async with running_bot(synapse_server, db_path, stale_after=1.0):
            await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, bounce)))
            await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, check)))
        async with running_bot(synapse_server, db_path, stale_after=1.0):
            await ask(ann, room, "!esx help", bot_id)  # one more full round trip after the restart
    assert HOST in _replies_to(ann, room, bot_id, check)[0]["content"]["body"]
    ignored = _replies_to(ann, room, bot_id, bounce)
    assert "Ignored `bounce esx02.lab.local`" in ignored[0]["content"]["body"]
    assert len(_replies_to(ann, room, bot_id, check)) == 1
    assert len(ignored) == 1


async def test_a_redelivered_event_runs_once(synapse_server: SynapseServer, tmp_path: Path) -> None:
    bot_id, db_path = synapse_server.bot.user_id, tmp_path / "bot.db"
    key = f"matrix:{bot_id}:next_batch"
    async with person(synapse_server, synapse_server.human) as ann:
        async with running_bot(synapse_server, db_path) as bot:
            room = await room_with_bot(ann, bot_id)
            await ask(ann, room, "!esx help", bot_id)
            before = await KeyValueRepo(bot.app.db).get(key)
            first = await ann.say(room, f"!esx check {HOST}")
            await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, first)))
        db = await SqliteDatabase.open(db_path)
        await KeyValueRepo(db).set(key, str(before))  # as if the token had never moved past `first`
        await db.close()
        async with running_bot(synapse_server, db_path):
            await ask(ann, room, "!esx help", bot_id)
    assert len(_replies_to(ann, room, bot_id, first)) == 1


async def test_killed_mid_command_read_only_reruns_host_change_does_not(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    bot_id, db_path = synapse_server.bot.user_id, tmp_path / "bot.db"
    runs = {"slow": 0, "drain": 0}
    hang = asyncio.Event()

    @command("slow", help="read-only, slow the first time", role=Role.VIEWER)
    async def slow(ctx: Context) -> Reply:
        runs["slow"] += 1
        if not hang.is_set():
            await asyncio.Event().wait()
        return Reply.text("slow done")

    @command("drain", help="host-changing, slow the first time", role=Role.OPERATOR, mutating=True)
    async def drain(ctx: Context) -> Reply:
        runs["drain"] += 1
        if not hang.is_set():
            await asyncio.Event().wait()
        return Reply.text("drained")

    specs = (*SPECS, slow, drain)
    async with person(synapse_server, synapse_server.human) as ann:
        async with running_bot(synapse_server, db_path, specs=specs):
            room = await room_with_bot(ann, bot_id)
            slow_id = await ann.say(room, "!esx slow")
            drain_id = await ann.say(room, "!esx drain")
            async with asyncio.timeout(10):
                while runs != {"slow": 1, "drain": 1}:
                    await asyncio.sleep(0.02)
            assert await _inbox_state(db_path, slow_id) == "running"
        hang.set()
        async with running_bot(synapse_server, db_path, specs=specs):
            await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, slow_id)))
            await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, drain_id)))
            await ask(ann, room, "!esx help", bot_id)
    assert runs == {"slow": 2, "drain": 1}
    assert [e["content"]["body"] for e in _replies_to(ann, room, bot_id, slow_id)] == ["slow done"]
    (interrupted,) = _replies_to(ann, room, bot_id, drain_id)
    assert "restarted while running `drain`" in interrupted["content"]["body"]


async def test_rate_limit_is_waited_out(synapse_server: SynapseServer, tmp_path: Path) -> None:
    bot_id = synapse_server.bot.user_id
    async with (
        running_bot(synapse_server, tmp_path / "bot.db"),
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        synapse_server.set_message_ratelimit(bot_id, per_second=2, burst=1)
        try:
            started = time.monotonic()
            sent = [await ann.say(room, f"!esx check {HOST}") for _ in range(4)]
            for event_id in sent:
                await ann.wait_for(
                    lambda r, e, event_id=event_id: bool(_replies_to(ann, room, bot_id, event_id))
                )
            elapsed = time.monotonic() - started
        finally:
            synapse_server.set_message_ratelimit(bot_id, per_second=0, burst=0)
    assert all(len(_replies_to(ann, room, bot_id, event_id)) == 1 for event_id in sent)
    assert elapsed >= 1.0  # four messages at 2/s with a burst of one cannot go faster


async def test_a_rejected_access_token_is_a_clear_fatal_error(
    synapse_server: SynapseServer, tmp_path: Path
) -> None:
    db = await SqliteDatabase.open(tmp_path / "bot.db")
    await migrate(db)
    settings = MatrixSettings(
        homeserver=synapse_server.base_url,
        user_id=synapse_server.bot.user_id,
        access_token=Secret("syt_revoked"),
    )
    adapter = MatrixAdapter(settings, db)

    async def never(_command: Any) -> Reply:
        raise AssertionError("no command expected")

    try:
        with pytest.raises(MatrixFatal, match=r"M_UNKNOWN_TOKEN.*access token"):
            await asyncio.wait_for(adapter.run(never), 10)
    finally:
        await db.close()


class _Cable:
    """A TCP relay between the bot and Synapse that the test can unplug and plug back in."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def unplug(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        self._server = None

    async def aclose(self) -> None:
        await self.unplug()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_network_loss_backs_off_and_recovers(synapse_server: SynapseServer, tmp_path: Path) -> None:
    bot_id = synapse_server.bot.user_id
    cable = _Cable(int(synapse_server.base_url.rsplit(":", 1)[1]))
    await cable.plug()
    via_cable = f"http://127.0.0.1:{cable.port}"
    async with (
        contextlib.aclosing(cable),
        running_bot(synapse_server, tmp_path / "bot.db", homeserver=via_cable) as bot,
        person(synapse_server, synapse_server.human) as ann,
    ):
        room = await room_with_bot(ann, bot_id)
        await cable.unplug()
        async with asyncio.timeout(15):
            while "sync failed" not in bot.adapter.health().detail:
                await asyncio.sleep(0.05)
        command_id = await ann.say(room, f"!esx check {HOST}")  # sent while the bot is cut off
        await asyncio.sleep(1.0)
        await cable.plug()
        await ann.wait_for(lambda r, e: bool(_replies_to(ann, room, bot_id, command_id)), timeout=30)
        assert bot.adapter.health().connected
