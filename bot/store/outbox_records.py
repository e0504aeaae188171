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


@dataclass(frozen=True, slots=True)
class OutboxTrouble:
    id: int
    conversation: str
    state: str  # retrying | failed
    attempts: int
    error: str
    created_at: float


# A pending row waits for an earlier pending row of its room when that row is about to go (not tried
# yet, and not itself stuck behind a retrying row of its own chain): order among deliverable messages.
# An ordinary row also waits for an earlier row in its first few retries (attempts 1-2), so a short
# hiccup does not shuffle a room; an alert page ("alert:…" keys) never waits for a retrying row. An
# edit waits for the earlier rows of its own chain (its message and the edits before it). After two
# failed tries a row is moved aside: it is retried on its own budget and holds nothing back.
_DELIVERABLE = (
    "o.state = 'pending' AND o.platform = ? AND NOT EXISTS (SELECT 1 FROM outbox i"
    " WHERE i.state = 'pending' AND i.platform = o.platform AND i.room = o.room AND i.id < o.id"
    " AND ((o.edit_of IS NOT NULL AND (i.key = o.edit_of OR i.edit_of = o.edit_of))"
    " OR (i.attempts BETWEEN 1 AND 2 AND COALESCE(o.key, '') NOT LIKE 'alert:%')"
    " OR (i.attempts = 0 AND NOT (i.edit_of IS NOT NULL AND EXISTS (SELECT 1 FROM outbox c"
    " WHERE c.state = 'pending' AND c.attempts > 0 AND c.id < i.id"
    " AND (c.key = i.edit_of OR c.edit_of = i.edit_of))))))"
)


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
        """Pending rows whose time has come and that nothing earlier holds back (see ``_DELIVERABLE``)."""
        rows = await self._db.fetchall(
            f"SELECT o.* FROM outbox o WHERE {_DELIVERABLE} AND o.next_attempt_at <= ?"  # noqa: S608 - constant
            " ORDER BY o.id LIMIT ?",
            (platform, now, limit),
        )
        return [_row(r) for r in rows]

    async def next_due_at(self, platform: str) -> float | None:
        row = await self._db.fetchone(
            f"SELECT MIN(o.next_attempt_at) AS t FROM outbox o WHERE {_DELIVERABLE}",  # noqa: S608 - constant
            (platform,),
        )
        return None if row is None or row["t"] is None else float(row["t"])

    async def message_id(self, key: str) -> str | None:
        row = await self._db.fetchone("SELECT message_id FROM outbox WHERE key = ?", (key,))
        return None if row is None or row["message_id"] is None else str(row["message_id"])

    async def chain_message_id(self, key: str) -> str | None:
        """The message that the rows of ``key``'s chain (the row and its edits) show, once one was sent."""
        row = await self._db.fetchone(
            "SELECT message_id FROM outbox WHERE (key = ? OR edit_of = ?) AND state = 'sent'"
            " AND message_id IS NOT NULL ORDER BY id LIMIT 1",
            (key, key),
        )
        return None if row is None else str(row["message_id"])

    async def troubled(self, limit: int = 20) -> list[OutboxTrouble]:
        """Rows still retrying after a failure, and rows that failed for good; newest first."""
        rows = await self._db.fetchall(
            "SELECT id, platform, room, state, attempts, last_error, created_at FROM outbox"
            " WHERE state = 'failed' OR (state = 'pending' AND attempts > 0) ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            OutboxTrouble(
                id=int(r["id"]),
                conversation=f"{r['platform']}:{r['room']}",
                state="failed" if r["state"] == "failed" else "retrying",
                attempts=int(r["attempts"]),
                error=r["last_error"] or "",
                created_at=float(r["created_at"]),
            )
            for r in rows
        ]

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

    async def stats(self, now: float) -> tuple[int, float | None]:
        """(pending rows, age in seconds of the oldest pending row)."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending'"
        )
        if row is None or not row["n"]:
            return 0, None
        return int(row["n"]), now - float(row["oldest"])
