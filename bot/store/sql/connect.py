"""``open_database``: a database URL to the backend that serves it."""

from __future__ import annotations

from bot.store.sql.base import Database, StoreError
from bot.store.sql.sqlite import SqliteDatabase


async def open_database(url: str) -> Database:
    """``sqlite:///path/to/esxbot.db``, a bare path, or ``postgresql://user:pw@host:port/db``."""
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.sql.postgres import PostgresDatabase  # psycopg is loaded only when used

        return await PostgresDatabase.open(url)
    if url.startswith("sqlite:///"):
        return await SqliteDatabase.open(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite://"):
        return await SqliteDatabase.open(url.removeprefix("sqlite://") or ":memory:")
    if "://" in url:
        raise StoreError(f"unsupported database URL scheme: {url.split('://', 1)[0]}")
    return await SqliteDatabase.open(url)
