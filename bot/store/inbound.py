"""Inbound dedupe: platform event ids we have already handled (Slack retries, Matrix re-syncs)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import to_epoch
from bot.store.sql.base import Database


class InboundRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, platform: str, event_id: str, *, at: datetime) -> bool:
        """Record the event; True the first time, False for a redelivery (run it once only)."""
        changed = await self._db.execute(
            "INSERT INTO inbound_events (platform, event_id, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT (platform, event_id) DO NOTHING",
            (platform, event_id, to_epoch(at)),
        )
        return changed > 0

    async def prune(self, older_than: datetime) -> int:
        """Forget ids older than the platforms' last retry (Slack: about an hour is plenty)."""
        return await self._db.execute(
            "DELETE FROM inbound_events WHERE received_at < ?", (to_epoch(older_than),)
        )
