"""``SlackFake``: Slack's Web API and Socket Mode on 127.0.0.1, for tests and benchmarks.

Socket Mode as docs.slack.dev "Using Socket Mode" describes it: ``apps.connections.open`` (app token)
hands out a one-time ``wss`` URL; the server greets with ``hello``; every envelope carries an
``envelope_id`` and must be acknowledged within 3 s by echoing it; Events API envelopes that are not
acknowledged are re-sent with ``retry_attempt``/``retry_reason`` (up to 3 retries); ``disconnect``
frames (``refresh_requested``, ``link_disabled``, ``warning``) precede a server-side close.

Tests drive users (``slash``, ``mention``, ``dm``, ``click``), disconnects and 429s, and assert on
``calls``, ``acks``, ``messages``. ``post_http`` sends the same payloads to an HTTP endpoint signed
with the v0 scheme (or wrongly signed, or stale) as Slack's Events API would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.slack_fake import payloads
from tests.slack_fake.people import People
from tests.slack_fake.web_api import (
    ApiCall,
    Channel,
    Fault,
    Message,
    RateLimit,
    Workspace,
    answer,
    read_args,
)

ACK_TIMEOUT = 3.0
BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-1-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"
MAX_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    delay: float  # seconds between (last) delivery and the ack


@dataclass(frozen=True, slots=True)
class Delivery:
    """One envelope as sent on a socket (retries of an event are separate deliveries)."""

    envelope_id: str
    kind: str
    payload: dict[str, Any]
    retry_attempt: int
    connection: int


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    body: str


@dataclass(slots=True)
class _Pending:
    envelope: dict[str, Any]
    sent_at: float
    timer: asyncio.Task[None] | None = None


class SlackFake:
    """A Slack workspace with one app, two users (ann, bob) and a channel #ops the bot is in."""

    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        signing_secret: str = SIGNING_SECRET,
        ack_timeout: float = ACK_TIMEOUT,
        max_retries: int = MAX_RETRIES,
        slash_command: str = "/esx",
    ) -> None:
        self.workspace = Workspace(bot_token=bot_token, app_token=app_token)
        self.workspace.users.update({"U0ANN0001": "ann", "U0BOB0001": "bob"})
        self.workspace.channels["C0OPS0001"] = Channel(id="C0OPS0001", name="ops")
        self.signing_secret = signing_secret
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.people = People(self.workspace, lambda: self.port, slash_command)
        self.acks: list[Ack] = []
        self.deliveries: list[Delivery] = []
        self.timeouts: list[str] = []  # envelope ids whose ack did not arrive in time
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_url
        self.connections_opened = 0
        self.say_hello = True
        self._sockets: dict[int, web.WebSocketResponse] = {}
        self._tickets: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._backlog: list[dict[str, Any]] = []
        self._rr = itertools.count()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> SlackFake:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._web_api)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/respond/{key}", self._respond)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        for ws in list(self._sockets.values()):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SlackFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What to give ``AsyncWebClient(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/api/"

    # assertions ------------------------------------------------------------------------------
    @property
    def calls(self) -> list[ApiCall]:
        return self.workspace.calls

    @property
    def messages(self) -> list[Message]:
        return self.workspace.messages

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.workspace.calls if c.method == method]

    def bot_messages(self, channel: str | None = None) -> list[Message]:
        return [
            m
            for m in self.workspace.messages
            if m.user == payloads.BOT_USER_ID and (channel is None or m.channel == channel)
        ]

    @property
    def open_connections(self) -> int:
        return len(self._sockets)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; checked after every recorded change."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # on-demand failures ------------------------------------------------------------------------
    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After``."""
        self.workspace.rate_limits[method] = RateLimit(retry_after=retry_after, remaining=times)

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` badly, as real Slack sometimes does:
        ``status=500, body="<html>…"`` (a 5xx page), ``body={"ok": False}`` (no ``error``),
        ``body={"ok": False, "error": "internal_error"}``, ``status=429`` without ``Retry-After``,
        ``body={"ok": True}`` (success without a ``ts``)."""
        answer = Fault(status, body if body is not None else {"ok": False}, headers or {}, times)
        self.workspace.faults.setdefault(method, []).append(answer)

    def revoke(self, error: str = "token_revoked") -> None:
        """Every later call with the bot token answers ``error`` (an uninstalled app, a rotated token)."""
        self.workspace.revoked = error

    async def disconnect(self, reason: str = "refresh_requested", *, close_after: float = 0.2) -> None:
        """Send a ``disconnect`` frame on every open socket, then close them as Slack does."""
        frame = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})
        sockets = list(self._sockets.values())
        for ws in sockets:
            await ws.send_str(frame)
        await asyncio.sleep(close_after)
        for ws in sockets:
            await ws.close()

    # users act -------------------------------------------------------------------------------
    async def slash(self, text: str, *, user: str = "U0ANN0001", channel: str = "C0OPS0001") -> str:
        payload = self.people.slash_payload(text, user=user, channel=channel)
        return await self.send_envelope("slash_commands", payload, accepts_response_payload=True)

    async def mention(self, text: str, **kwargs: Any) -> Message:
        message, payload = self.people.mention_payload(text, **kwargs)
        await self.send_envelope("events_api", payload)
        return message

    async def dm(self, text: str, **kwargs: Any) -> Message:
        message, payload = self.people.dm_payload(text, **kwargs)
        await self.send_envelope("events_api", payload)
        return message

    async def click(self, message: Message, **kwargs: Any) -> str:
        return await self.send_envelope(
            "interactive", self.people.click_payload(message, **kwargs), accepts_response_payload=False
        )

    # Socket Mode ------------------------------------------------------------------------------
    async def send_envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        envelope: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await self._deliver(envelope)
        return str(envelope["envelope_id"])

    async def redeliver(self, envelope_id: str, *, reason: str = "timeout") -> None:
        """Re-send an envelope (same id and payload, next ``retry_attempt``), as Slack sometimes does."""
        original = next(d for d in reversed(self.deliveries) if d.envelope_id == envelope_id)
        envelope = {
            "envelope_id": envelope_id,
            "payload": original.payload,
            "type": original.kind,
            "accepts_response_payload": original.kind != "events_api",
            "retry_attempt": original.retry_attempt + 1,
            "retry_reason": reason,
        }
        await self._deliver(envelope)

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        if not self._sockets:
            self._backlog.append(envelope)
            return
        ids = sorted(self._sockets)
        connection = ids[next(self._rr) % len(ids)]
        envelope_id = envelope["envelope_id"]
        old = self._pending.pop(envelope_id, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        pending = _Pending(envelope=envelope, sent_at=time.monotonic())
        self._pending[envelope_id] = pending
        self.deliveries.append(
            Delivery(
                envelope_id,
                envelope["type"],
                envelope["payload"],
                int(envelope.get("retry_attempt", 0)),
                connection,
            )
        )
        await self._sockets[connection].send_str(json.dumps(envelope))
        pending.timer = asyncio.create_task(self._expire(envelope_id, pending))
        await self._notify()

    async def _expire(self, envelope_id: str, pending: _Pending) -> None:
        await asyncio.sleep(self.ack_timeout)
        if self._pending.get(envelope_id) is not pending:
            return
        del self._pending[envelope_id]
        self.timeouts.append(envelope_id)
        envelope = pending.envelope
        attempt = int(envelope.get("retry_attempt", 0))
        if envelope["type"] == "events_api" and attempt < self.max_retries:
            await self.send_envelope(
                "events_api", envelope["payload"], retry_attempt=attempt + 1, retry_reason="timeout"
            )
        await self._notify()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_opened += 1
        connection = self.connections_opened
        self._sockets[connection] = ws
        if self.say_hello:  # real Slack has been seen to skip it after a reconnect
            hello = {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": payloads.APP_ID},
            }
            await ws.send_str(json.dumps(hello))
        backlog, self._backlog = self._backlog, []
        for envelope in backlog:
            await self._deliver(envelope)
        await self._notify()
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    await self._on_ack(frame.data, connection)
        finally:
            self._sockets.pop(connection, None)
            await self._notify()
        return ws

    async def _on_ack(self, data: str, connection: int) -> None:
        with contextlib.suppress(ValueError):
            body = json.loads(data)
            envelope_id = body.get("envelope_id") if isinstance(body, dict) else None
            if not envelope_id:
                return
            pending = self._pending.pop(envelope_id, None)
            if pending is not None and pending.timer is not None:
                pending.timer.cancel()
            delay = time.monotonic() - pending.sent_at if pending else float("nan")
            self.acks.append(Ack(envelope_id, body.get("payload"), connection, delay))
            await self._notify()

    # Web API ---------------------------------------------------------------------------------
    async def _web_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token = await read_args(request)
        status, body, headers = answer(self.workspace, method, args, token, self._issue_socket_url)
        recorded = body if isinstance(body, dict) else {"raw": body}
        self.workspace.calls.append(ApiCall(method, token, args, status, recorded, time.monotonic()))
        await self._notify()
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="text/html", headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def _issue_socket_url(self) -> str:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}"

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        await self._notify()
        return web.Response(text="ok")

    # HTTP mode (Events API over HTTP) ---------------------------------------------------------
    async def post_http(
        self,
        url: str,
        kind: str,
        payload: dict[str, Any],
        *,
        secret: str | None = None,
        age: float = 0.0,
        signed: bool = True,
        retry_num: int | None = None,
    ) -> HttpResult:
        """POST a payload as Slack would; ``secret`` overrides the signing secret (wrong signature),
        ``age`` back-dates the timestamp (stale requests), ``signed=False`` omits the headers."""
        secret = secret or self.signing_secret
        status, text = await payloads.post_signed(url, kind, payload, secret, age, signed, retry_num)
        return HttpResult(status, text)
