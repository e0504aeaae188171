"""Alert-group rows: the unit that pages, escalates, is acknowledged and forwarded to PagerDuty.

Like alerts, groups change state only through ``cas`` (guarded by ``version``). ``open_or_insert``
finds the open group of a key or opens one; the partial unique index keeps it at one per key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.model import AlertState, Severity
from bot.store.sql.base import Database, Row, StoreError

_CAS_COLUMNS = frozenset(
    {
        "state",
        "severity",
        "fired_at",
        "escalation_step",
        "next_step_at",
        "update_at",
        "updated_at",
        "muted",
        "policy",
        "page_key",
        "page_rooms",
        "shown",
        "acked_by",
        "acked_at",
        "resolved_at",
        "resolved_by",
    }
)
_JSON = frozenset({"policy", "page_rooms", "shown", "labels"})


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: int
    group_key: str
    labels: dict[str, str]
    state: AlertState
    severity: Severity
    first_seen: float
    fired_at: float | None
    escalation_step: int
    next_step_at: float | None
    update_at: float | None
    updated_at: float | None
    muted: str | None
    policy: Any
    page_key: str | None
    page_rooms: tuple[str, ...]
    shown: dict[str, str]  # alert id → state, as the page showed them last
    acked_by: str | None
    acked_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    version: int

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    @property
    def ref(self) -> str:
        return f"g{self.id}"


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _record(r: Row) -> GroupRecord:
    return GroupRecord(
        id=int(r["id"]),
        group_key=r["group_key"],
        labels={str(k): str(v) for k, v in json.loads(r["labels"] or "{}").items()},
        state=AlertState(r["state"]),
        severity=Severity(r["severity"]),
        first_seen=float(r["first_seen"]),
        fired_at=_opt(r["fired_at"]),
        escalation_step=int(r["escalation_step"]),
        next_step_at=_opt(r["next_step_at"]),
        update_at=_opt(r["update_at"]),
        updated_at=_opt(r["updated_at"]),
        muted=r["muted"],
        policy=json.loads(r["policy"]) if r["policy"] else None,
        page_key=r["page_key"],
        page_rooms=tuple(json.loads(r["page_rooms"])),
        shown={str(k): str(v) for k, v in json.loads(r["shown"] or "{}").items()},
        acked_by=r["acked_by"],
        acked_at=_opt(r["acked_at"]),
        resolved_at=_opt(r["resolved_at"]),
        resolved_by=r["resolved_by"],
        version=int(r["version"]),
    )


def _encode(column: str, value: Any) -> Any:
    if column in _JSON:
        return None if value is None else json.dumps(value, sort_keys=True)
    if isinstance(value, AlertState | Severity):
        return value.value
    return value


class GroupRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, group_id: int) -> GroupRecord | None:
        row = await self._db.fetchone("SELECT * FROM alert_groups WHERE id = ?", (group_id,))
        return None if row is None else _record(row)

    async def open_or_insert(
        self, key: str, labels: dict[str, str], severity: Severity, *, now: float, first_step_at: float
    ) -> tuple[GroupRecord, bool]:
        """The open group of ``key`` (False) or a new pending one (True)."""
        for _ in range(3):
            row = await self._db.fetchone(
                "SELECT * FROM alert_groups WHERE group_key = ? AND state <> 'resolved'", (key,)
            )
            if row is not None:
                return _record(row), False
            row = await self._db.fetchone(
                "INSERT INTO alert_groups (group_key, labels, state, severity, first_seen, next_step_at)"
                " VALUES (?, ?, 'pending', ?, ?, ?)"
                " ON CONFLICT (group_key) WHERE state <> 'resolved' DO NOTHING RETURNING *",
                (key, json.dumps(labels, sort_keys=True), severity.value, now, first_step_at),
            )
            if row is not None:
                return _record(row), True
        raise StoreError(f"could not open or find the alert group {key!r}")

    async def cas(self, group_id: int, version: int, **changes: Any) -> bool:
        """Apply ``changes`` only if the row still has ``version``; bumps it. False: someone was first."""
        unknown = set(changes) - _CAS_COLUMNS
        if unknown:
            raise ValueError(f"not an alert group state column: {sorted(unknown)}")
        names = sorted(changes)
        assignments = ", ".join(f"{name} = ?" for name in names)
        changed = await self._db.execute(
            f"UPDATE alert_groups SET {assignments}, version = version + 1"  # noqa: S608 - whitelisted
            " WHERE id = ? AND version = ?",
            (*(_encode(n, changes[n]) for n in names), group_id, version),
        )
        return changed == 1

    async def due(self, now: float, limit: int = 100) -> list[GroupRecord]:
        rows = await self._db.fetchall(
            "SELECT * FROM alert_groups WHERE state <> 'resolved'"
            " AND ((next_step_at IS NOT NULL AND next_step_at <= ?)"
            " OR (update_at IS NOT NULL AND update_at <= ?))"
            " ORDER BY id LIMIT ?",
            (now, now, limit),
        )
        return [_record(r) for r in rows]

    async def next_due_at(self) -> float | None:
        row = await self._db.fetchone(
            "SELECT MIN(next_step_at) AS a, MIN(update_at) AS b FROM alert_groups WHERE state <> 'resolved'"
        )
        if row is None:
            return None
        times = [float(t) for t in (row["a"], row["b"]) if t is not None]
        return min(times) if times else None

    async def listing(self, *, include_resolved: bool, limit: int = 50) -> list[GroupRecord]:
        where = "" if include_resolved else "WHERE state <> 'resolved'"
        rows = await self._db.fetchall(
            f"SELECT * FROM alert_groups {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
            (limit,),
        )
        return [_record(r) for r in rows]
