"""Forward alerts to PagerDuty (Events API v2) and to generic JSON webhooks, through the outbox.

Both senders have the ``ChatAdapter`` shape, so the outbox delivers their rows like chat messages:
written in the alert's own transaction, sent in order per target, retried with backoff, marked sent.
A restart neither loses nor repeats an event (a send whose "sent" mark was lost is sent again;
PagerDuty's ``dedup_key`` makes that harmless). The engine queues rows for conversations such as
``pagerduty:default`` or ``webhook:ops``; the room names a PagerDuty routing key or a webhook URL.

Config (``settings.extra["pager"]``)::

    pager:
      pagerduty:
        url: https://events.pagerduty.com/v2/enqueue   # tests point it at a local receiver
        services: {default: <routing key>}
      webhooks:
        ops: {url: https://hooks.example.org/esxbot, secret: <hmac key>}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.chat.base import CommandHandler, DeliveryError, TransportHealth
from bot.messages import Reply
from bot.schema import Secret, parse

log = logging.getLogger(__name__)

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_TIMEOUT = aiohttp.ClientTimeout(total=15)


def _event(reply: Reply) -> Mapping[str, Any]:
    event = reply.data.get("pager")
    if not isinstance(event, Mapping) or "event_action" not in event or "dedup_key" not in event:
        raise DeliveryError("outbox row is not a pager event", permanent=True)
    return event


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(1.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


def _classify(status: int, text: str, headers: Mapping[str, str], where: str) -> None:
    """Raise the ``DeliveryError`` a failed status deserves (PagerDuty's documented retry table)."""
    if status == 429:
        raise DeliveryError(f"{where}: rate limited", retry_after=_retry_after(headers) or 30.0)
    if status >= 500 or status == 408:
        raise DeliveryError(f"{where}: HTTP {status}")
    raise DeliveryError(f"{where}: HTTP {status}: {text[:200]}", permanent=True)


class HttpSender:
    """What both senders share: one aiohttp session, status classification, health."""

    platform = "http"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._ok_at: float | None = None
        self._last_error = ""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        return self._session

    async def _post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str, dict[str, str]]:
        try:
            async with self._client().post(url, data=body, headers=dict(headers)) as response:
                text = await response.text()
                status = response.status
                got = dict(response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            raise DeliveryError(f"{self.platform}: {self._last_error}") from exc
        self._last_error = "" if status < 300 else f"HTTP {status}"
        if status < 300:
            self._ok_at = asyncio.get_running_loop().time()
        return status, text, got

    async def run(self, handle: CommandHandler) -> None:
        """Nothing to receive: keep the session until cancelled, then close it."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        raise DeliveryError(f"{self.platform} events cannot be edited", permanent=True)

    def health(self) -> TransportHealth:
        age = None if self._ok_at is None else asyncio.get_running_loop().time() - self._ok_at
        return TransportHealth(
            self.platform, not self._last_error, age, self._last_error, holds_connection=False
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class PagerDutySender(HttpSender):
    """Events API v2: trigger / acknowledge / resolve with ``dedup_key`` = the alert's key."""

    platform = "pagerduty"

    def __init__(self, routing_keys: Mapping[str, Secret], url: str = PAGERDUTY_URL) -> None:
        super().__init__()
        self._keys = dict(routing_keys)
        self._url = url

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        event = _event(reply)
        routing = self._keys.get(room)
        if not routing:
            raise DeliveryError(f"pagerduty: no routing key for service {room!r}", permanent=True)
        body: dict[str, Any] = {
            "routing_key": routing.reveal(),
            "event_action": event["event_action"],
            "dedup_key": event["dedup_key"],
        }
        if event["event_action"] == "trigger":
            body["client"] = "esxbot"
            body["payload"] = {
                name: event[name]
                for name in ("summary", "source", "severity", "component", "custom_details")
                if event.get(name) is not None
            }
        data = json.dumps(body).encode()
        status, text, headers = await self._post(self._url, data, {"Content-Type": "application/json"})
        if status not in (200, 201, 202):
            _classify(status, text, headers, "pagerduty")
        return str(event["dedup_key"])


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: Secret | None = None  # HMAC key for X-Esxbot-Signature

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be http(s)://…")


@dataclass(frozen=True, slots=True)
class PagerDutySettings:
    url: str = PAGERDUTY_URL  # tests point it at a local receiver
    services: Mapping[str, Secret] = field(default_factory=dict)  # name → routing key


@dataclass(frozen=True, slots=True)
class PagerSettings:
    """The ``pager`` section."""

    pagerduty: PagerDutySettings = field(default_factory=PagerDutySettings)
    webhooks: Mapping[str, Webhook] = field(default_factory=dict)


class WebhookSender(HttpSender):
    """POST the alert event as JSON; with a secret, ``X-Esxbot-Signature: sha256=<hmac of body>``."""

    platform = "webhook"

    def __init__(self, hooks: Mapping[str, Webhook]) -> None:
        super().__init__()
        self._hooks = dict(hooks)

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        event = _event(reply)
        hook = self._hooks.get(room)
        if hook is None:
            raise DeliveryError(f"webhook: no webhook named {room!r}", permanent=True)
        body = json.dumps({"version": 1, "source": "esxbot", **event}, sort_keys=True).encode()
        idempotency = f"{event['dedup_key']}:{event.get('sequence', event['event_action'])}"
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency}
        if hook.secret:
            digest = hmac.new(hook.secret.reveal().encode(), body, hashlib.sha256).hexdigest()
            headers["X-Esxbot-Signature"] = f"sha256={digest}"
        status, text, got = await self._post(hook.url, body, headers)
        if status >= 300:
            _classify(status, text, got, "webhook")
        return idempotency


def senders_from_extra(raw: Any) -> tuple[list[PagerDutySender | WebhookSender], tuple[str, ...]]:
    """The senders and the conversations to forward to, from ``settings.extra["pager"]``."""
    return pager_senders(parse(PagerSettings, raw, "pager"))


def pager_senders(section: PagerSettings) -> tuple[list[PagerDutySender | WebhookSender], tuple[str, ...]]:
    """The senders and the conversations to forward to."""
    senders: list[PagerDutySender | WebhookSender] = []
    targets: list[str] = []
    if section.pagerduty.services:
        senders.append(PagerDutySender(section.pagerduty.services, section.pagerduty.url or PAGERDUTY_URL))
        targets += [f"pagerduty:{name}" for name in section.pagerduty.services]
    if section.webhooks:
        senders.append(WebhookSender(section.webhooks))
        targets += [f"webhook:{name}" for name in section.webhooks]
    return senders, tuple(targets)
