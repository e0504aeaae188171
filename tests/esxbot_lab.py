"""Real ``esxbot run`` processes against the Slack fake, each behind its own gateway, for end-to-end tests.

``SlackGateway`` stands between one bot process and the ``SlackFake``: it relays the Web API (and
records which instance made each call, which the fake alone cannot tell, both use one token), can
withhold the answers of chosen methods after relaying them (a post Slack accepted but whose answer
never reached the bot: the in-flight case), and rewrites the Socket Mode URL from
``apps.connections.open`` to point at a ``TcpProxy`` that can silently black-hole the open
connections (bytes stop flowing both ways, nothing is closed), as a dead NAT entry would.
``EsxbotProcess`` starts ``python -m bot --config <yaml> run`` with secrets in ``ESXBOT_*`` variables,
logs to a file, and reads ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from tests.fixtures.postgres import free_port
from tests.slack_fake import SlackFake

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Relayed:
    """One Web API call as the gateway saw it."""

    method: str
    args: dict[str, Any]
    ok: bool | None  # None: relayed to the fake, answer withheld from the bot
    at: float


class TcpProxy:
    """Forwards TCP to ``target``; ``cut()`` makes every open connection a black hole (never closed)."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._live: list[asyncio.Event] = []  # one "cut" flag per open connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self.accepted = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> int:
        """Stop forwarding on every connection open now; returns how many were cut."""
        for flag in self._live:
            flag.set()
        count, self._live = len(self._live), []
        return count

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        flag = asyncio.Event()
        self._live.append(flag)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, flag))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, cut: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if not cut.is_set():  # once cut, bytes are read and dropped: no backpressure, no FIN
                    sink.write(data)
                    await sink.drain()
            if not cut.is_set():
                sink.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()


class SlackGateway:
    """One bot's way to the fake: Web API relay with attribution and withholding, socket via a proxy."""

    def __init__(self, fake: SlackFake, name: str) -> None:
        self.fake, self.name = fake, name
        self.calls: list[Relayed] = []
        self.withhold: set[str] = set()  # methods relayed to the fake whose answer the bot never gets
        self.proxy = TcpProxy(fake.port)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> SlackGateway:
        await self.proxy.start()
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._relay)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        await self.proxy.stop()

    def posts(self, method: str = "chat.postMessage") -> list[Relayed]:
        return [c for c in self.calls if c.method == method]

    async def _relay(self, request: web.Request) -> web.Response:
        assert self._session is not None
        method = request.match_info["method"]
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        url = f"http://127.0.0.1:{self.fake.port}/api/{method}"
        async with self._session.request(
            request.method, url, params=request.query, data=body, headers=headers
        ) as upstream:
            status, answer = upstream.status, await upstream.json()
            retry_after = upstream.headers.get("Retry-After")
        args = _args(body, request.headers.get("Content-Type", ""))
        if method in self.withhold:
            self.calls.append(Relayed(method, args, None, time.monotonic()))
            await self._release.wait()  # the bot waits for an answer that never comes
        self.calls.append(Relayed(method, args, bool(answer.get("ok")), time.monotonic()))
        if method == "apps.connections.open" and answer.get("ok"):
            parts = urlsplit(answer["url"])
            answer["url"] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.proxy.port}"))
        return web.json_response(
            answer, status=status, headers={"Retry-After": retry_after} if retry_after else None
        )


def _args(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        loaded = json.loads(body)
        return loaded if isinstance(loaded, dict) else {}
    return dict(parse_qsl(body.decode()))


@dataclass
class EsxbotProcess:
    """One ``esxbot run`` process; ``web_port`` serves ``/readyz`` and ``/metrics``."""

    name: str
    config: Path
    env: dict[str, str]
    web_port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def start(self) -> EsxbotProcess:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(self.config), "run",
                cwd=self.config.parent, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
            )  # fmt: skip
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        return self

    async def readyz(self) -> tuple[int, dict[str, Any]] | None:
        """(status, body) of ``/readyz``; None while the web server does not answer."""
        assert self._session is not None
        try:
            async with self._session.get(f"http://127.0.0.1:{self.web_port}/readyz") as r:
                return r.status, await r.json()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def metrics(self) -> str:
        assert self._session is not None
        async with self._session.get(f"http://127.0.0.1:{self.web_port}/metrics") as r:
            assert r.status == 200
            return await r.text()

    async def role(self) -> str | None:
        answer = await self.readyz()
        return None if answer is None else str(answer[1]["role"])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                await self.kill()
        if self._session is not None:
            await self._session.close()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])


async def until(check: Callable[[], Any], timeout: float, *, every: float = 0.1) -> float:
    """Poll ``check()`` (sync or async) until truthy; seconds it took. TimeoutError names the limit."""
    start = time.monotonic()
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not met within {timeout:.0f}s")
        await asyncio.sleep(every)
