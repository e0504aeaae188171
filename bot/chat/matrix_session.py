"""The Matrix adapter's session: one nio client, logged in with an access token or a password.

The device id (and the access token a password login creates) are kept in the store's kv table, so
a restarted bot is the same Matrix device: its transaction ids still deduplicate and no stray devices
pile up on the account. Requests here wait out network loss and rate limits with capped backoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from nio import AsyncClient, AsyncClientConfig

from bot.chat.matrix_events import (
    UNKNOWN_TOKEN,
    MatrixError,
    MatrixFatal,
    MatrixRateLimited,
    checked,
    screen_sync,
)
from bot.clock import Clock
from bot.config import MatrixSettings
from bot.store.kv import KeyValueRepo

log = logging.getLogger(__name__)


class ScreeningClient(AsyncClient):  # type: ignore[misc]  # nio ships no type hints
    """nio's client, with every ``/sync`` answer screened before nio parses it (``screen_sync``)."""

    screened = 0  # events dropped before nio saw them

    async def parse_body(self, transport_response: ClientResponse) -> Any:
        body = await super().parse_body(transport_response)
        if isinstance(body, dict) and "next_batch" in body:
            for line in screen_sync(body):
                self.screened += 1
                log.warning("matrix: dropped malformed event %s", line)
        return body


class MatrixSession:
    def __init__(
        self,
        settings: MatrixSettings,
        kv: KeyValueRepo,
        clock: Clock,
        *,
        request_timeout: float,
        backoff_cap: float,
    ) -> None:
        self._settings = settings
        self._kv = kv
        self._clock = clock
        self._backoff_cap = backoff_cap
        self.detail = "not started"
        # nio would retry 429s and timeouts forever on its own; we want to see them and decide.
        self.client = ScreeningClient(
            settings.homeserver,
            settings.user_id,
            config=AsyncClientConfig(
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=request_timeout,
                encryption_enabled=False,
                store_sync_tokens=False,
            ),
        )

    @property
    def user_id(self) -> str:
        return self._settings.user_id

    def key(self, name: str) -> str:
        return f"matrix:{self._settings.user_id}:{name}"

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row: doubling, capped, with jitter."""
        return float(min(self._backoff_cap, 0.5 * 2 ** min(failures, 16)) * random.uniform(0.5, 1.0))  # noqa: S311

    async def login(self) -> None:
        """The configured token, else the stored one, else the password; ``MatrixFatal`` if none works."""
        device = await self._kv.get(self.key("device_id"))
        configured = self._settings.access_token.reveal()
        stored = await self._kv.get(self.key("access_token"))
        for token in (t for t in (configured, stored) if t):
            self.client.restore_login(self.user_id, device or "", token)
            try:
                whoami = checked(await self.retrying(self.client.whoami), "whoami")
            except MatrixFatal:
                if token == configured or not self._settings.password:
                    raise
                continue
            if whoami.device_id:
                self.client.device_id = whoami.device_id
                await self._kv.set(self.key("device_id"), whoami.device_id)
            log.info("matrix: logged in as %s with a token (device %s)", self.user_id, whoami.device_id)
            return
        await self.password_login()

    async def password_login(self) -> None:
        password = self._settings.password.reveal()
        if not password:
            raise MatrixFatal("matrix: neither access_token nor password is configured", code=UNKNOWN_TOKEN)
        device = await self._kv.get(self.key("device_id"))
        self.client.access_token = ""
        self.client.device_id = device or ""

        async def login() -> Any:
            return await self.client.login(password, device_name=self._settings.device_name)

        response = checked(await self.retrying(login), "login")
        await self._kv.set(self.key("device_id"), response.device_id)
        await self._kv.set(self.key("access_token"), response.access_token)
        log.info("matrix: logged in as %s with the password (device %s)", self.user_id, response.device_id)

    @property
    def can_relogin(self) -> bool:
        return bool(self._settings.password)

    async def forget_token(self) -> None:
        await self._kv.delete(self.key("access_token"))

    async def retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run one request until it gets an answer: network failures back off, rate limits are waited out.

        Matrix error answers other than ``M_LIMIT_EXCEEDED`` are returned for ``checked`` to raise.
        """
        failures = 0
        while True:
            try:
                response = await call()
                checked(response, "request")
                return response
            except MatrixRateLimited as exc:
                await self._clock.sleep(exc.retry_after or 1.0)
            except MatrixFatal:
                raise
            except MatrixError:
                return response
            except (OSError, TimeoutError) as exc:
                failures += 1
                self.detail = f"homeserver unreachable: {exc!r}"
                log.warning("matrix: %s", self.detail)
                await self._clock.sleep(self.backoff(failures))

    async def close(self) -> None:
        await self.client.close()
