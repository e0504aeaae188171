"""SQLite backend of ``Database``: aiosqlite on one connection (the embedded default)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path

import aiosqlite

from bot.store.sql.base import Params, Row, StoreError

log = logging.getLogger(__name__)


class SqliteDatabase:
    """aiosqlite on one connection, WAL mode, autocommit outside explicit transactions."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"esxbot_tx_{id(self)}", default=False)

    @classmethod
    async def open(cls, path: str | Path) -> SqliteDatabase:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = await aiosqlite.connect(target, isolation_level=None)
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite database {target}: {exc}") from exc
        return cls(conn, target)

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            yield

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._locked():
            cursor = await self._conn.execute(sql, tuple(params))
            count = cursor.rowcount
            await cursor.close()
            return count

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._locked():
            cursor = await self._conn.execute(sql, tuple(params))
            row = await cursor.fetchone()
            await cursor.close()
            return dict(row) if row is not None else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._locked():
            cursor = await self._conn.execute(sql, tuple(params))
            rows = await cursor.fetchall()
            await cursor.close()
            return [dict(r) for r in rows]

    async def executescript(self, sql: str) -> None:
        async with self._locked():
            await self._conn.executescript(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")
            finally:
                self._in_tx.reset(token)

    async def close(self) -> None:
        await self._conn.close()
