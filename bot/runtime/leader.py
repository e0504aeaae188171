"""Leader election: exactly one esxbot runs the leader-only loops (polling, watchers, timers, delivery).

PostgreSQL: a session advisory lock held on a dedicated connection. The holder proves every
``heartbeat`` seconds that the connection lives; a failed or slower-than-``lease`` heartbeat ends
leadership at once (the loops are cancelled before anything else happens), and the server drops the
lock when the connection dies (a killed process at once, a cut network after the TCP keepalives).
SQLite: one instance only; an exclusive ``flock`` on ``<database>.lock`` refuses a second process.

Every new term increments a fencing token kept in the database (``kv`` row ``leader.fence``); a
step that must not run twice checks it inside its transaction with ``Fence.guard(token)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import psycopg
from psycopg.rows import TupleRow

from bot.clock import Clock, SystemClock
from bot.store.sql.base import Database, StoreError

log = logging.getLogger(__name__)

FENCE_KEY = "leader.fence"
LoopFactory = Callable[[], Awaitable[None]]
Listener = Callable[[bool], None]


class NotLeader(Exception):
    """A fenced step was attempted with a token from a term that has ended."""


class AlreadyRunning(StoreError):
    """Another esxbot holds this SQLite database."""


@dataclass(frozen=True, slots=True)
class LeaderTiming:
    heartbeat: float = 2.0  # seconds between liveness checks of the lock's connection
    lease: float = 6.0  # a heartbeat slower than this ends leadership
    retry: float = 2.0  # a follower asks for the lock this often
    keepalive_idle: int = 10  # server side: seconds of silence before TCP keepalive probes …
    keepalive_interval: int = 5  # … sent this often …
    keepalive_count: int = 3  # … this many times before the server drops the session (and lock)


class Fence:
    """The fencing token: the current leadership term's number, stored in the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def advance(self) -> int:
        row = await self._db.fetchone(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, '1', ?) ON CONFLICT (key) DO UPDATE"
            " SET value = CAST(CAST(kv.value AS BIGINT) + 1 AS TEXT), updated_at = excluded.updated_at"
            " RETURNING value",
            (FENCE_KEY, time.time()),
        )
        if row is None:
            raise StoreError("the fencing token could not be advanced")
        return int(row["value"])

    async def current(self) -> int:
        row = await self._db.fetchone("SELECT value FROM kv WHERE key = ?", (FENCE_KEY,))
        return 0 if row is None else int(row["value"])

    @asynccontextmanager
    async def guard(self, token: int) -> AsyncIterator[None]:
        """A transaction that runs only while ``token`` is the current term (raises ``NotLeader``)."""
        lock = " FOR UPDATE" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction():
            row = await self._db.fetchone(
                f"SELECT value FROM kv WHERE key = ?{lock}",  # noqa: S608 - fixed fragment
                (FENCE_KEY,),
            )
            current = 0 if row is None else int(row["value"])
            if current != token:
                raise NotLeader(f"term {token} has ended (current term {current})")
            yield


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def token(self) -> int | None:
        """The fencing token of the current term, None while follower."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(True)`` on gain, ``listener(False)`` on loss (called synchronously); returns
        the function that unsubscribes it."""

    async def wait(self, leader: bool) -> None:
        """Return once ``is_leader == leader``."""

    async def run(self) -> None:
        """Campaign (and hold) until cancelled."""


class LeaderState:
    """The observable part of a leadership: who leads, which term, who to tell on change."""

    def __init__(self) -> None:
        self._token: int | None = None
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._token is not None

    @property
    def token(self) -> int | None:
        return self._token

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait(self, leader: bool) -> None:
        while self.is_leader != leader:
            self._changed.clear()
            await self._changed.wait()

    def set_term(self, token: int | None) -> None:
        was = self.is_leader
        self._token = token
        if was == self.is_leader:
            return
        self._changed.set()
        log.info("leadership %s (term %s)", "gained" if token is not None else "lost", token)
        for listener in list(self._listeners):
            try:
                listener(self.is_leader)
            except Exception:
                log.exception("leadership listener failed")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a deployment name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLeader(LeaderState):
    def __init__(
        self,
        url: str,
        db: Database,
        *,
        name: str = "esxbot",
        timing: LeaderTiming | None = None,
        clock: Clock | None = None,
        application_name: str = "esxbot-leader",
    ) -> None:
        super().__init__()
        self._url = url
        self._fence = Fence(db)
        self._key = lock_key(name)
        self._timing = timing or LeaderTiming()
        self._clock = clock or SystemClock()
        self._app_name = application_name

    async def _connect(self) -> psycopg.AsyncConnection[TupleRow]:
        t = self._timing
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=self._app_name, connect_timeout=max(2, int(t.lease))
        )
        for setting, value in (
            ("tcp_keepalives_idle", t.keepalive_idle),
            ("tcp_keepalives_interval", t.keepalive_interval),
            ("tcp_keepalives_count", t.keepalive_count),
        ):
            await conn.execute("SELECT set_config(%s, %s, false)", (setting, str(value)))
        return conn

    async def _hold(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        t = self._timing
        while True:
            async with asyncio.timeout(t.lease):
                cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
                row = await cursor.fetchone()
            if row is not None and row[0] is True:
                break
            await self._clock.sleep(t.retry)
        self.set_term(await self._fence.advance())
        while True:
            await self._clock.sleep(t.heartbeat)
            async with asyncio.timeout(t.lease):
                await conn.execute("SELECT 1")

    async def run(self) -> None:
        while True:
            conn = None
            try:
                conn = await self._connect()
                await self._hold(conn)
            except (psycopg.Error, StoreError, OSError, TimeoutError) as exc:
                log.warning("leader election: %s", str(exc).strip() or type(exc).__name__)
            finally:
                self.set_term(None)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(1.0):
                            await conn.close()
            await self._clock.sleep(self._timing.retry)


class SingleInstance(LeaderState):
    """SQLite: this process is the only instance and therefore always the leader."""

    def __init__(self, db: Database, lock_file: IO[str] | None) -> None:
        super().__init__()
        self._fence = Fence(db)
        self._file = lock_file

    @classmethod
    def acquire(cls, db: Database, db_path: str) -> SingleInstance:
        """Take ``<db_path>.lock``; ``AlreadyRunning`` names the holder when another process has it."""
        if db_path in ("", ":memory:"):
            return cls(db, None)
        path = Path(f"{db_path}.lock")
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunning(
                f"another esxbot ({holder}) is already running on {db_path}; SQLite allows one instance"
                " (use PostgreSQL to run several)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        return cls(db, handle)

    async def run(self) -> None:
        self.set_term(await self._fence.advance())
        try:
            await asyncio.Event().wait()
        finally:
            self.set_term(None)
            self.release()

    def release(self) -> None:
        if self._file is not None and not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


async def open_leadership(
    url: str, db: Database, *, name: str = "esxbot", timing: LeaderTiming | None = None
) -> Leadership:
    """PostgreSQL URL → advisory-lock election; anything else (SQLite) → the single-instance lock."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLeader(url, db, name=name, timing=timing)
    return SingleInstance.acquire(db, url.removeprefix("sqlite:///").removeprefix("sqlite://"))


async def _supervise(name: str, factory: LoopFactory, clock: Clock) -> None:
    """Run one leader-only loop; restart it with capped backoff when it crashes."""
    delay = 1.0
    while True:
        try:
            await factory()
            return
        except Exception:
            log.exception("leader-only loop %s crashed; restarting in %.0fs", name, delay)
        await clock.sleep(delay)
        delay = min(delay * 2, 60.0)


async def run_while_leader(
    leadership: Leadership, factories: Mapping[str, LoopFactory], *, clock: Clock | None = None
) -> None:
    """Start every loop when leadership is gained, cancel them all the moment it is lost; forever."""
    clock = clock or SystemClock()
    tasks: list[asyncio.Task[None]] = []

    def on_change(leader: bool) -> None:
        if not leader:  # cancel in the same call that ends the term, before any other await
            for task in tasks:
                task.cancel()

    unsubscribe = leadership.subscribe(on_change)
    try:
        while True:
            await leadership.wait(True)
            tasks[:] = [
                asyncio.create_task(_supervise(name, factory, clock), name=f"leader-{name}")
                for name, factory in factories.items()
            ]
            try:
                await leadership.wait(False)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                tasks.clear()
    finally:
        unsubscribe()
