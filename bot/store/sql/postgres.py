"""The PostgreSQL backend of the database door (psycopg 3, async), for several esxbot instances.

It keeps the SQLite backend's contract: ``?`` placeholders (translated here to ``%s``), rows as
dicts, the changed-row count from ``execute``, and ``transaction()`` that is flat when nested and
local to the task that opened it. Statements run on one autocommit connection under a lock, so a
transaction's statements never interleave with another task's; a broken connection is replaced
before the next statement (never inside a transaction, which fails as a whole instead).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bot.store.sql.base import Params, Row, StoreError

log = logging.getLogger(__name__)

# Quoted text, comments and dollar-quoted bodies are copied as they are; only bare ``?`` changes.
_SQL_PARTS = re.compile(
    r"""
      (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?\$(?P=tag)?\$)
    | (?P<mark>\?)
    """,
    re.VERBOSE | re.DOTALL,
)


def translate(sql: str) -> str:
    """``?`` → ``%s`` outside quotes and comments; every literal ``%`` doubled for psycopg."""
    out: list[str] = []
    pos = 0
    for m in _SQL_PARTS.finditer(sql):
        out.append(sql[pos : m.start()].replace("%", "%%"))
        out.append("%s" if m.group("mark") else m.group(0).replace("%", "%%"))
        pos = m.end()
    out.append(sql[pos:].replace("%", "%%"))
    return "".join(out)


def adapt(params: Params) -> tuple[Any, ...]:
    """``{bool}`` columns are integers on both backends: send Python booleans as 0/1, as sqlite3 does."""
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


def redact_url(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


Connection = psycopg.AsyncConnection[dict[str, Any]]


async def connect(url: str, *, application_name: str = "esxbot") -> Connection:
    """One autocommit connection returning dict rows; ``StoreError`` (password redacted) on failure."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row, application_name=application_name
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {exc}") from exc


class PostgresDatabase:
    """psycopg 3 on one connection, reconnected when it breaks between statements."""

    dialect = "postgresql"

    def __init__(self, conn: Connection, url: str) -> None:
        self._conn = conn
        self._url = url
        self.url = redact_url(url)
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"esxbot_pg_tx_{id(self)}", default=False)

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        return cls(await connect(url), url)

    async def _connection(self) -> Connection:
        if self._conn.closed or self._conn.broken:
            if self._in_tx.get():
                raise StoreError(f"lost the connection to {self.url} inside a transaction")
            log.warning("PostgreSQL connection to %s was lost; reconnecting", self.url)
            self._conn = await connect(self._url)
        return self._conn

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[Connection]:
        if self._in_tx.get():
            yield await self._connection()
            return
        async with self._lock:
            yield await self._connection()

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._locked() as conn:
            cursor = await conn.execute(translate(sql), adapt(params))
            return max(cursor.rowcount, 0)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._locked() as conn:
            cursor = await conn.execute(translate(sql), adapt(params))
            return None if cursor.description is None else await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._locked() as conn:
            cursor = await conn.execute(translate(sql), adapt(params))
            return [] if cursor.description is None else await cursor.fetchall()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            conn = await self._connection()
            token = self._in_tx.set(True)
            try:
                async with conn.transaction():
                    yield
            finally:
                self._in_tx.reset(token)

    async def close(self) -> None:
        await self._conn.close()
