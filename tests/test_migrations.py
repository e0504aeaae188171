"""Migrations on SQLite: fresh, re-run on an existing database, a newer schema refused, atomic files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.store.sql.base import StoreError
from bot.store.sql.migrate import Migration, bundled_migrations, migrate
from bot.store.sql.sqlite import SqliteDatabase


async def test_fresh_then_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    db = await SqliteDatabase.open(path)
    applied = await migrate(db)
    assert applied == [m.version for m in bundled_migrations()]
    await db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 0)")
    await db.close()
    db = await SqliteDatabase.open(path)
    assert await migrate(db) == []
    assert (await db.fetchone("SELECT value FROM kv WHERE key = 'k'")) == {"value": "v"}
    extra = Migration(9000, "later", "CREATE TABLE later_table (id {pk}, at {ts});")
    assert await migrate(db, [*bundled_migrations(), extra]) == [9000]
    rows = await db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    assert rows[-1]["version"] == 9000
    with pytest.raises(StoreError, match="upgrade esxbot"):
        await migrate(db)
    await db.close()


async def test_a_failing_migration_leaves_no_half_version(tmp_path: Path) -> None:
    db = await SqliteDatabase.open(tmp_path / "m.db")
    await migrate(db)
    broken = Migration(9001, "broken", "CREATE TABLE half (id {pk});\nINSERT INTO nowhere VALUES (1);")
    with pytest.raises(Exception, match="nowhere"):
        await migrate(db, [*bundled_migrations(), broken])
    tables = await db.fetchall("SELECT name FROM sqlite_master WHERE name = 'half'")
    assert tables == []
    assert 9001 not in {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    await db.close()
