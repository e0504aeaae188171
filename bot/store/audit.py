"""The audit trail: every command run or refused, who asked, where, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import from_epoch, to_epoch
from bot.store.sql.base import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: str
    conversation: str
    text: str
    command: str | None
    outcome: str  # ok, denied, bad-arguments, unknown-command, error, confirm-pending, confirmed, …
    detail: str | None = None
    ref: str | None = None


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        at: datetime,
        user_id: str,
        conversation: str,
        text: str,
        command: str | None,
        outcome: str,
        detail: str | None = None,
        ref: str | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO audit (at, user_id, conversation, text, command, outcome, detail, ref)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (to_epoch(at), user_id, conversation, text, command, outcome, detail, ref),
        )

    async def recent(self, limit: int = 20, *, user_id: str | None = None) -> list[AuditEntry]:
        where, params = ("WHERE user_id = ?", [user_id]) if user_id else ("", [])
        rows = await self._db.fetchall(
            f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
            [*params, limit],
        )
        return [
            AuditEntry(
                id=int(r["id"]),
                at=from_epoch(float(r["at"])),
                user_id=r["user_id"],
                conversation=r["conversation"],
                text=r["text"],
                command=r["command"],
                outcome=r["outcome"],
                detail=r["detail"],
                ref=r["ref"],
            )
            for r in rows
        ]
