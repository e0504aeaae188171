"""The Slack adapter (slack-bolt ``AsyncApp``): ``/esx``, mentions, DMs and button clicks in; Block Kit out.

Socket Mode by default (no public URL; the SDK's client reconnects on ``disconnect`` frames and dead
pings), or HTTP mode (Events API, every request's v0 signature and timestamp checked by Bolt). Every
listener acknowledges first and works afterwards in a task of its own, so Slack's 3-second deadline
never depends on a vCenter. Each payload is claimed once in the inbound-dedupe table by its
``event_id``/``trigger_id`` (Slack redelivers); host-changing commands older than ``stale_after``
(sent while the bot was down and retried by Slack) are answered "ignored" instead of run. Web API
calls go through the SDK's 429 retry handler, which honours ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.chat.base import CommandHandler, DeliveryError, TransportHealth
from bot.chat.outbox import retry_delay
from bot.chat.render_slack import ACTION_PREFIX, escape, render, resolve_actions
from bot.chat.slack_inbound import Incoming, Kind, from_action, from_event, from_slash
from bot.clock import Clock, SystemClock
from bot.config import SlackSettings
from bot.messages import Command, Conversation, Reply, Style, Text, User

log = logging.getLogger(__name__)

PLATFORM = "slack"
_PERMANENT = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_blocks_format",
    "msg_too_long", "msg_blocks_too_long", "no_text", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "missing_scope", "message_not_found", "cant_update_message", "restricted_action",
}  # fmt: skip
_OUR_BUTTONS = re.compile(rf"^{ACTION_PREFIX}")
_TOKEN_DEAD = {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
_NOT_THERE = {"not_in_channel", "channel_not_found", "is_archived"}  # response_url still reaches the person
TOKEN_RECHECK = 60.0  # seconds between auth.test calls while the token is rejected
DIRECT_ATTEMPTS = 5  # a direct reply is retried like an outbox row, within about half a minute


class EventLedger(Protocol):
    """The inbound-dedupe repository (``bot.store.inbound.InboundRepo``)."""

    async def claim(self, platform: str, event_id: str, *, at: datetime) -> bool: ...


class SlackAdapter:
    """``ChatAdapter`` for Slack. ``mutating(text)`` says whether a command may change a host."""

    platform = PLATFORM

    def __init__(
        self,
        settings: SlackSettings,
        ledger: EventLedger,
        *,
        clock: Clock | None = None,
        mutating: Callable[[str], bool] = lambda _text: True,
        stale_after: float = 120.0,
        http_host: str = "127.0.0.1",
        http_path: str = "/slack/events",
        ping_interval: float = 10.0,
        rate_limit_retries: int = 3,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._clock = clock or SystemClock()
        self._mutating = mutating
        self._stale_after = stale_after
        self._http_host, self._http_path = http_host, http_path
        self._ping_interval = ping_interval
        self._client = AsyncWebClient(
            token=settings.bot_token.reveal(),
            base_url=settings.base_url or AsyncWebClient.BASE_URL,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ],
        )
        self._app: AsyncApp | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._http: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_seen: float | None = None
        self._sessions = 0  # Socket Mode sessions seen; every one after the first is a reconnect
        self._session: object | None = None  # the SDK's current socket session, to notice a new one
        self.token_problem: str | None = None  # set while Slack rejects the bot token
        self.http_port = settings.http_port

    # ChatAdapter -------------------------------------------------------------------------------
    async def run(self, handle: CommandHandler) -> None:
        self._app = self._build_app(handle)
        watch = asyncio.create_task(self._watch_token(), name="slack token check")
        try:
            if self._settings.mode == "http":
                await self._serve_http(self._app)
            else:
                await self._serve_socket(self._app)
            await asyncio.Event().wait()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await self._shutdown()

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        return await self._post(room, reply, thread=thread, preface=None)

    async def _post(self, room: str, reply: Reply, *, thread: str | None, preface: str | None) -> str:
        message = render(reply, command=self._settings.slash_command, preface=preface)
        response = await self._call(
            self._client.chat_postMessage, channel=room, thread_ts=thread, **message.arguments()
        )
        ts = response.get("ts")
        if not isinstance(ts, str) or not ts:
            # it may have been posted; a retry could post it twice, and a made-up id breaks later edits
            raise DeliveryError("slack: chat.postMessage answered ok without a message ts", permanent=True)
        return ts

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        message = render(reply, command=self._settings.slash_command)
        await self._call(self._client.chat_update, channel=room, ts=message_id, **message.arguments())

    def health(self) -> TransportHealth:
        age = None if self._last_seen is None else max(time.monotonic() - self._last_seen, 0.0)
        if self.token_problem is not None:
            problem = self.token_problem
            detail = f"Slack rejects the bot token ({problem}): install the app again or set a new token"
            return TransportHealth(PLATFORM, False, age, detail)
        if self._settings.mode == "http":
            return TransportHealth(PLATFORM, self._http is not None, age, "http mode", holds_connection=False)
        client = self._socket.client if self._socket is not None else None
        session = client.current_session if client is not None else None
        self._count_session()
        connected = client is not None and not client.closed and session is not None and not session.closed
        if client is not None and client.last_ping_pong_time is not None:
            pong_age = max(time.time() - client.last_ping_pong_time, 0.0)
            age = pong_age if age is None else min(age, pong_age)
        reconnects = max(self._sessions - 1, 0)
        return TransportHealth(
            PLATFORM, connected, age, f"socket mode, {reconnects} reconnect(s)", reconnects
        )

    # wiring ------------------------------------------------------------------------------------
    def _build_app(self, handle: CommandHandler) -> AsyncApp:
        app = AsyncApp(
            name="esxbot",
            client=self._client,
            signing_secret=self._settings.signing_secret.reveal(),
            request_verification_enabled=self._settings.mode == "http",
            process_before_response=False,
            logger=log,
        )

        async def on_slash(ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
            await ack()
            self._spawn(self._process(from_slash(body), handle))

        async def on_event(body: dict[str, Any], context: Mapping[str, Any]) -> None:
            incoming = from_event(body, context.get("bot_user_id"))
            if incoming is not None:
                self._spawn(self._process(incoming, handle))

        async def on_action(ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
            await ack()
            self._spawn(self._process(from_action(body), handle))

        app.command(self._settings.slash_command)(on_slash)
        app.event("app_mention")(on_event)
        app.event("message")(on_event)
        app.action({"type": "block_actions", "action_id": _OUR_BUTTONS})(on_action)
        return app

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._last_seen = time.monotonic()
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_socket(self, app: AsyncApp) -> None:
        self._socket = AsyncSocketModeHandler(
            app, self._settings.app_token.reveal(), logger=log, web_client=self._client,
            ping_interval=self._ping_interval,
        )  # fmt: skip
        self._socket.client.on_message_listeners.append(self._on_frame)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def _on_frame(self, frame: aiohttp.WSMessage) -> None:
        """Every text frame (the SDK handles ``disconnect`` before its own listeners see it)."""
        self._last_seen = time.monotonic()
        try:
            message = json.loads(frame.data)
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        self._count_session()
        if kind == "hello":
            log.info("slack socket mode connected (%s connection(s))", message.get("num_connections"))
        elif kind == "disconnect":
            reason = message.get("reason")
            if reason == "link_disabled":
                log.error(
                    "slack turned Socket Mode off for this app (link_disabled); enable it in the app settings"
                )
            else:
                log.info("slack asked us to reconnect (%s)", reason)

    def _count_session(self) -> None:
        """A new SDK session object is a new connection, whether or not Slack said ``hello`` on it."""
        client = self._socket.client if self._socket is not None else None
        session = client.current_session if client is not None else None
        if session is not None and session is not self._session:
            self._session = session
            self._sessions += 1
            if self._sessions > 1:
                log.info("slack socket mode reconnected (%d reconnect(s) so far)", self._sessions - 1)

    async def _watch_token(self) -> None:
        """``auth.test`` at start, then every ``TOKEN_RECHECK`` seconds while Slack rejects the token."""
        await self._check_token()
        while True:
            await self._clock.sleep(TOKEN_RECHECK)
            if self.token_problem is not None:
                await self._check_token()

    async def _check_token(self) -> None:
        """``auth.test`` at start: a revoked or wrong token is reported at once, not on the first command."""
        try:
            who = await self._call(self._client.auth_test)
        except DeliveryError as exc:
            if self.token_problem is None:
                log.warning("slack auth.test failed (%s); carrying on", exc)
            return
        log.info("slack: authenticated as %s in %s", who.get("user"), who.get("team"))

    async def _serve_http(self, app: AsyncApp) -> None:
        async def events(request: web.Request) -> web.Response:
            self._last_seen = time.monotonic()
            response = await app.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(response)

        web_app = web.Application()
        web_app.router.add_post(self._http_path, events)
        self._http = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await self._http.setup()
        site = web.TCPSite(self._http, self._http_host, self._settings.http_port)
        await site.start()
        if self._http.addresses:
            self.http_port = int(self._http.addresses[0][1])
        log.info("slack http mode listening on %s:%s%s", self._http_host, self.http_port, self._http_path)

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None

    # one command -------------------------------------------------------------------------------
    async def _process(self, incoming: Incoming | None, handle: CommandHandler) -> None:
        if incoming is None:
            log.info("slack payload without a usable command skipped")
            return
        try:
            if not await self._ledger.claim(PLATFORM, incoming.key, at=self._clock.now()):
                log.info("slack redelivery of %s ignored (already handled)", incoming.key)
                return
            command = Command(
                user=User(f"{PLATFORM}:{incoming.user_id}", incoming.user_name),
                conversation=Conversation(PLATFORM, incoming.channel, incoming.thread_ts, incoming.direct),
                text=incoming.text,
                message_id=incoming.message_ts,
                sent_at=incoming.sent_at,
                prefix="" if incoming.kind is Kind.DM else self._settings.slash_command,
            )
            reply = await self._answer(command, handle)
            if incoming.kind is Kind.CLICK and reply.ok:
                await self._close_buttons(incoming)
            await self._reply(incoming, reply)
        except Exception:
            log.exception("slack command %s failed", incoming.key)

    async def _reply(self, incoming: Incoming, reply: Reply) -> None:
        """Post the answer with the outbox's retry policy; where the bot cannot post, use response_url."""
        thread, preface = _thread(incoming, reply), self._preface(incoming)
        for attempt in range(DIRECT_ATTEMPTS):
            try:
                await self._post(incoming.channel, reply, thread=thread, preface=preface)
                return
            except DeliveryError as exc:
                error = exc
                if exc.permanent or attempt + 1 == DIRECT_ATTEMPTS:
                    break
                delay = retry_delay(attempt, exc.retry_after)
                log.warning("slack reply to %s: %s; retry in %.1f s", incoming.key, exc, delay)
                await self._clock.sleep(delay)
        if incoming.response_url is not None and str(error).removeprefix("slack: ") in _NOT_THERE:
            await self._respond(incoming, reply, str(error).removeprefix("slack: "))
            return
        log.error("slack reply to %s in %s failed for good: %s", incoming.key, incoming.channel, error)

    async def _respond(self, incoming: Incoming, reply: Reply, why: str) -> None:
        """The answer through the command's ``response_url``: only the person sees it (ephemeral)."""
        note = (
            f"(Only you can see this: I cannot post in this channel ({why}). "
            f"Invite me with `/invite @esxbot` so everyone sees my answers.)"
        )
        message = render(reply, command=self._settings.slash_command, preface=note)
        try:
            response = await AsyncWebhookClient(incoming.response_url or "").send(
                text=message.text,
                blocks=list(message.blocks),
                response_type="ephemeral",
                replace_original=False,
            )
        except (aiohttp.ClientError, TimeoutError, SlackClientError) as exc:
            log.error("slack reply to %s via response_url failed: %r", incoming.key, exc)
            return
        if response.status_code != 200:
            log.error("slack reply to %s via response_url: HTTP %d", incoming.key, response.status_code)
        else:
            log.warning(
                "slack: answered %s through response_url (%s in %s)", incoming.key, why, incoming.channel
            )

    async def _answer(self, command: Command, handle: CommandHandler) -> Reply:
        if command.sent_at is not None:
            age = (self._clock.now() - command.sent_at).total_seconds()
            if age > self._stale_after and self._mutating(command.text):
                note = (
                    f"Ignored `{command.text[:80]}`: it was sent {age:.0f} s ago (while I was offline, "
                    "or Slack delivered it late) and host-changing commands older than "
                    f"{self._stale_after:.0f} s are not run. Send it again if you still want it."
                )
                log.warning("stale slack command from %s ignored: %r", command.user.id, command.text[:80])
                return Reply(summary=note, blocks=(Text(note, Style.WARNING),), ok=False)
        return await handle(command)

    def _preface(self, incoming: Incoming) -> str | None:
        """Slash commands are invisible to the channel: say who asked what above the answer."""
        if incoming.kind is not Kind.SLASH:
            return None
        return f"<@{incoming.user_id}> ran `{escape(self._settings.slash_command)} {escape(incoming.text)}`"

    async def _close_buttons(self, incoming: Incoming) -> None:
        if incoming.message_ts is None or not incoming.message_blocks:
            return
        verb = "cancelled" if incoming.text.startswith("no ") else f"ran `{escape(incoming.text)}`"
        blocks = resolve_actions(incoming.message_blocks, incoming.block_id, f"<@{incoming.user_id}> {verb}")
        try:
            await self._call(
                self._client.chat_update, channel=incoming.channel, ts=incoming.message_ts,
                text=incoming.message_text or "esxbot", blocks=list(blocks),
            )  # fmt: skip
        except DeliveryError as exc:
            log.warning("could not close the buttons on %s: %s", incoming.message_ts, exc)

    async def _call(
        self, method: Callable[..., Awaitable[AsyncSlackResponse]], **kwargs: Any
    ) -> AsyncSlackResponse:
        try:
            response = await method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            body = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(body.get("error") or f"HTTP {status} without an error code")
            retry_after = None
            if status == 429:
                header = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                retry_after = _seconds(header)
            if error in _TOKEN_DEAD:
                self._token_rejected(error)
            raise DeliveryError(
                f"slack: {error}", retry_after=retry_after, permanent=error in _PERMANENT
            ) from exc
        except (aiohttp.ClientError, TimeoutError, SlackClientError) as exc:
            raise DeliveryError(f"slack unreachable: {exc!r}") from exc
        if self.token_problem is not None:
            log.info("slack accepts the bot token again")
            self.token_problem = None
        return response

    def _token_rejected(self, error: str) -> None:
        if self.token_problem != error:
            log.error(
                "slack rejects the bot token (%s): every answer fails until the app is installed again "
                "or slack.bot_token is replaced; /readyz reports not ready",
                error,
            )
        self.token_problem = error


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _thread(incoming: Incoming, reply: Reply) -> str | None:
    """Replies stay in the thread they were asked in; long work opens one under the command."""
    if incoming.thread_ts is not None:
        return incoming.thread_ts
    if incoming.kind is Kind.CLICK:
        return incoming.message_ts
    return incoming.message_ts if reply.in_thread else None
