"""The console adapter: one local user typing commands on stdin, replies and notifications on stdout."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import TextIO

from bot.chat.base import CommandHandler, TransportHealth
from bot.chat.render_text import render_text
from bot.clock import Clock
from bot.messages import Command, Conversation, Reply, User

ROOM = "console"


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        user_id: str,
        clock: Clock,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        prompt: str = "esxbot> ",
        greeting: str = "",
    ) -> None:
        self._user = User(user_id if user_id.startswith("console:") else f"console:{user_id}")
        self._clock = clock
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._prompt = prompt
        self._greeting = greeting
        self._ids = itertools.count(1)
        self._last = time.monotonic()

    @property
    def conversation(self) -> Conversation:
        return Conversation(platform=self.platform, room=ROOM, direct=True)

    def _write(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def run(self, handle: CommandHandler) -> None:
        loop = asyncio.get_running_loop()
        self._write("esxbot console. Type `help` to start, `quit` to leave.")
        if self._greeting:
            self._write(self._greeting)
        while True:
            self._out.write(self._prompt)
            self._out.flush()
            line = await loop.run_in_executor(None, self._in.readline)
            self._last = time.monotonic()
            if not line:
                self._write("")
                return
            text = line.strip()
            if text in ("quit", "exit"):
                return
            if not text:
                continue
            command = Command(
                user=self._user,
                conversation=self.conversation,
                text=text,
                message_id=f"console-{next(self._ids)}",
                sent_at=self._clock.now(),
            )
            self._write(render_text(await handle(command)))

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        message_id = f"console-{next(self._ids)}"
        self._write(f"\n[notification {message_id}]\n{render_text(reply)}")
        return message_id

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        self._write(f"\n[update of {message_id}]\n{render_text(reply)}")

    def health(self) -> TransportHealth:
        return TransportHealth(self.platform, True, time.monotonic() - self._last)
