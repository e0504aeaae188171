"""Versioned schema migrations: numbered SQL files applied once, in order, recorded in a table.

Files are ``bot/store/migrations/NNNN_name.sql``; statements end with ``;`` at the end of a line and
may use the dialect tokens of ``bot.store.sql.base`` (``{pk}``, ``{ts}``, …). Each file runs in its own
transaction together with its row in ``schema_migrations``, so a crash never leaves half a version.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from importlib import resources

from bot.store.sql.base import Database, StoreError, apply_dialect

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(versions) != len(set(versions)):
        raise StoreError(f"duplicate migration versions: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    statements, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


async def applied_versions(db: Database) -> set[int]:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    rows = await db.fetchall("SELECT version FROM schema_migrations")
    return {int(r["version"]) for r in rows}


# Several instances starting at once on one PostgreSQL must not apply a version twice.
_PG_MIGRATION_LOCK = 0x65_73_78_62  # "esxb"


async def migrate(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is missing; return the versions applied now. Refuses a database from the future."""
    if db.dialect != "postgresql":
        return await _migrate(db, migrations)
    await db.fetchone("SELECT pg_advisory_lock(?)", (_PG_MIGRATION_LOCK,))
    try:
        return await _migrate(db, migrations)
    finally:
        await db.fetchone("SELECT pg_advisory_unlock(?)", (_PG_MIGRATION_LOCK,))


async def _migrate(db: Database, migrations: list[Migration] | None) -> list[int]:
    todo = bundled_migrations() if migrations is None else migrations
    done = await applied_versions(db)
    known = {m.version for m in todo}
    newer = sorted(v for v in done if v not in known and v > max(known, default=0))
    if newer:
        raise StoreError(
            f"database schema has versions {newer} that this esxbot does not know: upgrade esxbot"
        )
    applied: list[int] = []
    for mig in todo:
        if mig.version in done:
            continue
        async with db.transaction():
            for statement in split_statements(apply_dialect(mig.sql, db.dialect)):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, time.time()),
            )
        log.info("applied migration %04d_%s", mig.version, mig.name)
        applied.append(mig.version)
    return applied
