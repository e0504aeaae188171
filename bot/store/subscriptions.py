"""Which rooms want which notifications (``releases``, ``alerts``, …)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import to_epoch
from bot.store.sql.base import Database


class SubscriptionRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, conversation: str, topic: str, *, by: str, at: datetime) -> bool:
        """Subscribe; False when the room already was."""
        changed = await self._db.execute(
            "INSERT INTO subscriptions (conversation, topic, created_by, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (conversation, topic) DO NOTHING",
            (conversation, topic, by, to_epoch(at)),
        )
        return changed > 0

    async def remove(self, conversation: str, topic: str) -> bool:
        changed = await self._db.execute(
            "DELETE FROM subscriptions WHERE conversation = ? AND topic = ?", (conversation, topic)
        )
        return changed > 0

    async def rooms(self, topic: str) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT conversation FROM subscriptions WHERE topic = ? ORDER BY id", (topic,)
        )
        return [r["conversation"] for r in rows]

    async def topics(self, conversation: str) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT topic FROM subscriptions WHERE conversation = ? ORDER BY topic", (conversation,)
        )
        return [r["topic"] for r in rows]
