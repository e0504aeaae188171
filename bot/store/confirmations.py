"""Pending confirmations: proposals bound to a user and a command, that expire and work once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import from_epoch, to_epoch
from bot.store.sql.base import Database, Row


@dataclass(frozen=True, slots=True)
class Proposal:
    token: str
    user_id: str
    conversation: str
    command: str
    text: str
    created_at: datetime
    expires_at: datetime
    second_person: bool
    state: str  # pending, accepted, declined, expired
    decided_by: str | None = None
    message_id: str | None = None
    plan: Mapping[str, Any] | None = None  # what the preview showed; ``yes`` runs exactly this


def _proposal(r: Row) -> Proposal:
    return Proposal(
        token=r["token"],
        user_id=r["user_id"],
        conversation=r["conversation"],
        command=r["command"],
        text=r["text"],
        created_at=from_epoch(float(r["created_at"])),
        expires_at=from_epoch(float(r["expires_at"])),
        second_person=bool(r["second_person"]),
        state=r["state"],
        decided_by=r["decided_by"],
        message_id=r["message_id"],
        plan=json.loads(r["plan"]) if r["plan"] else None,
    )


class ConfirmationRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, p: Proposal) -> None:
        await self._db.execute(
            "INSERT INTO confirmations (token, user_id, conversation, command, text, created_at,"
            " expires_at, second_person, state, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                p.token,
                p.user_id,
                p.conversation,
                p.command,
                p.text,
                to_epoch(p.created_at),
                to_epoch(p.expires_at),
                int(p.second_person),
                json.dumps(p.plan, sort_keys=True) if p.plan is not None else None,
            ),
        )

    async def get(self, token: str) -> Proposal | None:
        row = await self._db.fetchone("SELECT * FROM confirmations WHERE token = ?", (token,))
        return _proposal(row) if row else None

    async def by_message(self, message_id: str) -> Proposal | None:
        row = await self._db.fetchone("SELECT * FROM confirmations WHERE message_id = ?", (message_id,))
        return _proposal(row) if row else None

    async def attach_message(self, token: str, message_id: str) -> None:
        await self._db.execute("UPDATE confirmations SET message_id = ? WHERE token = ?", (message_id, token))

    async def decide(self, token: str, state: str, *, by: str, at: datetime) -> bool:
        """Move a pending proposal to ``state``; False if someone else already did (works once)."""
        changed = await self._db.execute(
            "UPDATE confirmations SET state = ?, decided_by = ?, decided_at = ?"
            " WHERE token = ? AND state = 'pending'",
            (state, by, to_epoch(at), token),
        )
        return changed == 1
