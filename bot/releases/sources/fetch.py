"""HTTP fetching for sources: conditional GET or JSON POST (ETag / Last-Modified), timeouts, a cap.

A 304 returns ``not_modified`` and no body, so callers skip parsing. Every failure (network, status,
oversize, timeout) is one ``FetchError`` with a message fit for the ``sources`` command.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
USER_AGENT = "esxbot/0.1 (+release watcher)"


class FetchError(Exception):
    """The source could not be read; the message says why."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the next poll after ``failures`` consecutive errors: doubling, capped, jittered."""

    base: float = 60.0
    cap: float = 6 * 3600.0
    jitter: float = 0.2  # ± this fraction

    def delay(self, interval: float, failures: int, rng: random.Random) -> float:
        raw = interval if failures <= 0 else min(self.cap, self.base * 2 ** (failures - 1))
        return raw * (1.0 + rng.uniform(-self.jitter, self.jitter))


class Fetcher:
    """One aiohttp session for all sources; ``close`` it (``bot/runtime/app.py`` pairs open/close)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self._max_bytes = max_bytes

    @classmethod
    def create(cls, *, timeout: float = 30.0, max_bytes: int = DEFAULT_MAX_BYTES) -> Fetcher:
        session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return cls(session, timeout=timeout, max_bytes=max_bytes)

    async def close(self) -> None:
        await self._session.close()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """One GET; ``max_bytes`` overrides the fetcher's cap for this call (a depot's zip)."""
        return await self._request("GET", url, None, etag, last_modified, max_bytes or self._max_bytes)

    async def post_json(
        self, url: str, payload: Any, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """A JSON POST (the advisory-list API), conditional like ``get`` where the server supports it."""
        return await self._request("POST", url, payload, etag, last_modified, self._max_bytes)

    async def _request(
        self, method: str, url: str, payload: Any, etag: str | None, last_modified: str | None, cap: int
    ) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with self._session.request(
                method, url, headers=headers, json=payload, timeout=self._timeout
            ) as response:
                if response.status == 304:
                    return FetchResult(url, 304, etag=etag, last_modified=last_modified)
                if response.status >= 400:
                    raise FetchError(f"HTTP {response.status} {response.reason or ''}".strip())
                declared = response.content_length
                if declared is not None and declared > cap:
                    raise FetchError(f"response of {declared} bytes exceeds the {cap}-byte cap")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body.extend(chunk)
                    if len(body) > cap:
                        raise FetchError(f"response exceeds the {cap}-byte cap")
                return FetchResult(
                    url,
                    response.status,
                    bytes(body),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    content_type=response.headers.get("Content-Type"),
                )
        except TimeoutError as exc:
            raise FetchError(f"timed out after {self._timeout.total:.0f}s") from exc
        except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError) as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc
