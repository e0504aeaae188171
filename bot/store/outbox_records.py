"""Outbox rows: notifications written before they are sent, marked sent with the platform message id."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.sql.base import Database, Row


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    platform: str
    room: str
    thread: str | None
    key: str | None
    edit_of: str | None
    payload: str
    attempts: int


def _row(r: Row) -> OutboxRow:
    return OutboxRow(
        id=int(r["id"]),
        platform=r["platform"],
        room=r["room"],
        thread=r["thread"],
        key=r["key"],
        edit_of=r["edit_of"],
        payload=r["payload"],
        attempts=int(r["attempts"]),
    )


class OutboxRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        platform: str,
        room: str,
        payload: str,
        now: float,
        thread: str | None = None,
        key: str | None = None,
        edit_of: str | None = None,
    ) -> int | None:
        """Insert a row; None when ``key`` was already queued (idempotent enqueue)."""
        row = await self._db.fetchone(
            "INSERT INTO outbox (platform, room, thread, key, edit_of, payload, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
            (platform, room, thread, key, edit_of, payload, now, now),
        )
        return None if row is None else int(row["id"])

    async def due(self, platform: str, now: float, limit: int = 50) -> list[OutboxRow]:
        """The oldest pending row of each room whose retry time has come (delivery order per room)."""
        rows = await self._db.fetchall(
            "SELECT o.* FROM outbox o WHERE o.state = 'pending' AND o.platform = ?"
            " AND o.id = (SELECT MIN(i.id) FROM outbox i WHERE i.state = 'pending'"
            " AND i.platform = o.platform AND i.room = o.room)"
            " AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?",
            (platform, now, limit),
        )
        return [_row(r) for r in rows]

    async def next_due_at(self, platform: str) -> float | None:
        row = await self._db.fetchone(
            "SELECT MIN(o.next_attempt_at) AS t FROM outbox o WHERE o.state = 'pending' AND o.platform = ?"
            " AND o.id = (SELECT MIN(i.id) FROM outbox i WHERE i.state = 'pending'"
            " AND i.platform = o.platform AND i.room = o.room)",
            (platform,),
        )
        return None if row is None or row["t"] is None else float(row["t"])

    async def mark_sent(self, row_id: int, message_id: str, now: float) -> None:
        await self._db.execute(
            "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, attempts = attempts + 1,"
            " last_error = NULL WHERE id = ?",
            (message_id, now, row_id),
        )

    async def mark_retry(self, row_id: int, error: str, next_at: float) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error[:500], next_at, row_id),
        )

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error[:500], row_id),
        )

    async def message_id(self, key: str) -> str | None:
        row = await self._db.fetchone("SELECT message_id FROM outbox WHERE key = ?", (key,))
        return None if row is None or row["message_id"] is None else str(row["message_id"])

    async def stats(self, now: float) -> tuple[int, float | None]:
        """(pending rows, age in seconds of the oldest pending row)."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending'"
        )
        if row is None or not row["n"]:
            return 0, None
        return int(row["n"]), now - float(row["oldest"])
