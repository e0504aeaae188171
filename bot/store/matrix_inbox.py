"""The Matrix adapter's inbox: events it must answer, from "recorded" through "running" to "done".

Rows are written in the same transaction that stores the sync token, so no command is lost between
receiving a sync batch and answering it; ``running`` tells a restarted bot which ones were cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import from_epoch, to_epoch
from bot.store.sql.base import Database, Row


@dataclass(frozen=True, slots=True)
class InboxItem:
    event_id: str
    room: str
    sender: str
    kind: str  # command | reaction
    text: str
    thread: str | None
    reply_to: str
    direct: bool
    sent_at: datetime
    state: str = "pending"  # pending | running | done


def _item(row: Row) -> InboxItem:
    return InboxItem(
        event_id=row["event_id"],
        room=row["room"],
        sender=row["sender"],
        kind=row["kind"],
        text=row["text"],
        thread=row["thread"],
        reply_to=row["reply_to"],
        direct=bool(row["direct"]),
        sent_at=from_epoch(float(row["sent_at"])),
        state=row["state"],
    )


class MatrixInbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, item: InboxItem, *, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO matrix_inbox (event_id, room, sender, kind, text, thread, reply_to, direct,"
            " sent_at, received_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')"
            " ON CONFLICT (event_id) DO NOTHING",
            (
                item.event_id,
                item.room,
                item.sender,
                item.kind,
                item.text,
                item.thread,
                item.reply_to,
                int(item.direct),
                to_epoch(item.sent_at),
                to_epoch(at),
            ),
        )

    async def unfinished(self) -> list[InboxItem]:
        rows = await self._db.fetchall(
            "SELECT * FROM matrix_inbox WHERE state != 'done' ORDER BY received_at, sent_at"
        )
        return [_item(r) for r in rows]

    async def mark(self, event_id: str, state: str) -> None:
        await self._db.execute("UPDATE matrix_inbox SET state = ? WHERE event_id = ?", (state, event_id))

    async def prune(self, older_than: datetime) -> int:
        return await self._db.execute(
            "DELETE FROM matrix_inbox WHERE state = 'done' AND received_at < ?", (to_epoch(older_than),)
        )
