"""Alert, silence and handled-vCenter-event rows (alert groups are in ``alert_groups``).

Alerts change state only through ``cas``: an update guarded by the row's ``version``, which it bumps.
A step computed from an old read (a stale timer, an old leader, a second engine) changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import from_epoch, to_epoch
from bot.model import Alert, AlertState, Severity
from bot.store.sql.base import Database, Row, StoreError

MAX_SOURCES = 20
_CAS_COLUMNS = frozenset(
    {
        "state",
        "severity",
        "summary",
        "fired_at",
        "escalation_step",
        "next_step_at",
        "muted",
        "policy",
        "page_key",
        "page_rooms",
        "acked_by",
        "acked_at",
        "resolved_at",
        "resolved_by",
        "group_id",
    }
)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert row as the engine needs it; ``alert`` gives the domain value."""

    id: int
    host: str
    kind: str
    state: AlertState
    severity: Severity
    summary: str
    detail: str
    device: str | None
    first_seen: float
    last_seen: float
    sources: tuple[str, ...]
    signal_count: int
    fired_at: float | None
    escalation_step: int
    next_step_at: float | None
    muted: str | None
    policy: Any
    page_key: str | None
    page_rooms: tuple[str, ...]
    acked_by: str | None
    acked_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    version: int
    labels: dict[str, str]
    group_id: int | None

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    @property
    def alert(self) -> Alert:
        return Alert(
            id=self.id,
            host=self.host,
            kind=self.kind,
            state=self.state,
            severity=self.severity,
            summary=self.summary,
            first_seen=from_epoch(self.first_seen),
            last_seen=from_epoch(self.last_seen),
            sources=self.sources,
            escalation_step=self.escalation_step,
            acked_by=self.acked_by,
            resolved_at=from_epoch(self.resolved_at) if self.resolved_at is not None else None,
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _record(r: Row) -> AlertRecord:
    return AlertRecord(
        id=int(r["id"]),
        host=r["host"],
        kind=r["kind"],
        state=AlertState(r["state"]),
        severity=Severity(r["severity"]),
        summary=r["summary"],
        detail=r["detail"],
        device=r["device"],
        first_seen=float(r["first_seen"]),
        last_seen=float(r["last_seen"]),
        sources=tuple(json.loads(r["sources"])),
        signal_count=int(r["signal_count"]),
        fired_at=_opt_float(r["fired_at"]),
        escalation_step=int(r["escalation_step"]),
        next_step_at=_opt_float(r["next_step_at"]),
        muted=r["muted"],
        policy=json.loads(r["policy"]) if r["policy"] else None,
        page_key=r["page_key"],
        page_rooms=tuple(json.loads(r["page_rooms"])),
        acked_by=r["acked_by"],
        acked_at=_opt_float(r["acked_at"]),
        resolved_at=_opt_float(r["resolved_at"]),
        resolved_by=r["resolved_by"],
        version=int(r["version"]),
        labels={  # rows from before labels existed still match on host and kind
            "host": r["host"],
            "kind": r["kind"],
            **{str(k): str(v) for k, v in json.loads(r["labels"] or "{}").items()},
        },
        group_id=None if r["group_id"] is None else int(r["group_id"]),
    )


def _encode(column: str, value: Any) -> Any:
    if column in ("policy", "page_rooms"):
        return None if value is None else json.dumps(value, sort_keys=True)
    if isinstance(value, AlertState | Severity):
        return value.value
    return value


class AlertRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, alert_id: int) -> AlertRecord | None:
        row = await self._db.fetchone("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else _record(row)

    async def open_for(self, host: str, kind: str) -> AlertRecord | None:
        row = await self._db.fetchone(
            "SELECT * FROM alerts WHERE host = ? AND kind = ? AND state <> 'resolved'", (host, kind)
        )
        return None if row is None else _record(row)

    async def open_for_host(self, host: str) -> list[AlertRecord]:
        rows = await self._db.fetchall(
            "SELECT * FROM alerts WHERE host = ? AND state <> 'resolved' ORDER BY id", (host,)
        )
        return [_record(r) for r in rows]

    async def open_all(self) -> list[AlertRecord]:
        rows = await self._db.fetchall("SELECT * FROM alerts WHERE state <> 'resolved' ORDER BY id")
        return [_record(r) for r in rows]

    async def members(self, group_id: int) -> list[AlertRecord]:
        """Every alert that joined the group, resolved ones included, oldest first."""
        rows = await self._db.fetchall("SELECT * FROM alerts WHERE group_id = ? ORDER BY id", (group_id,))
        return [_record(r) for r in rows]

    async def insert(
        self,
        *,
        host: str,
        kind: str,
        severity: Severity,
        summary: str,
        detail: str,
        device: str | None,
        source: str,
        now: float,
        next_step_at: float,
        labels: dict[str, str],
    ) -> AlertRecord | None:
        """Open a pending alert; None when one is already open for (host, kind) (the index decides)."""
        row = await self._db.fetchone(
            "INSERT INTO alerts (host, kind, state, severity, summary, detail, device, first_seen,"
            " last_seen, sources, next_step_at, labels)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (host, kind) WHERE state <> 'resolved' DO NOTHING RETURNING *",
            (
                host,
                kind,
                severity.value,
                summary,
                detail,
                device,
                now,
                now,
                json.dumps([source] if source else []),
                next_step_at,
                json.dumps(labels, sort_keys=True),
            ),
        )
        return None if row is None else _record(row)

    async def touch(self, record: AlertRecord, *, source: str, detail: str, now: float) -> None:
        """Record one more signal for an open alert (not a state change: the version stays)."""
        sources = list(record.sources)
        if source and source not in sources:
            sources = [*sources, source][-MAX_SOURCES:]
        await self._db.execute(
            "UPDATE alerts SET last_seen = ?, sources = ?, detail = ?, signal_count = signal_count + 1"
            " WHERE id = ?",
            (max(now, record.last_seen), json.dumps(sources), detail or record.detail, record.id),
        )

    async def cas(self, alert_id: int, version: int, **changes: Any) -> bool:
        """Apply ``changes`` only if the row still has ``version``; bumps it. False: someone was first."""
        unknown = set(changes) - _CAS_COLUMNS
        if unknown:
            raise ValueError(f"not an alert state column: {sorted(unknown)}")
        names = sorted(changes)
        assignments = ", ".join(f"{name} = ?" for name in names)
        changed = await self._db.execute(
            f"UPDATE alerts SET {assignments}, version = version + 1"  # noqa: S608 - whitelisted names
            " WHERE id = ? AND version = ?",
            (*(_encode(n, changes[n]) for n in names), alert_id, version),
        )
        return changed == 1

    async def due(self, now: float, limit: int = 100) -> list[AlertRecord]:
        rows = await self._db.fetchall(
            "SELECT * FROM alerts WHERE next_step_at IS NOT NULL AND next_step_at <= ?"
            " AND state <> 'resolved' ORDER BY next_step_at, id LIMIT ?",
            (now, limit),
        )
        return [_record(r) for r in rows]

    async def next_due_at(self) -> float | None:
        row = await self._db.fetchone("SELECT MIN(next_step_at) AS t FROM alerts WHERE state <> 'resolved'")
        return None if row is None or row["t"] is None else float(row["t"])

    async def counts(self) -> dict[str, int]:
        """Alerts by state, for ``/metrics``."""
        rows = await self._db.fetchall("SELECT state, COUNT(*) AS n FROM alerts GROUP BY state")
        return {str(r["state"]): int(r["n"]) for r in rows}

    async def listing(self, *, include_resolved: bool, limit: int = 50) -> list[AlertRecord]:
        where = "" if include_resolved else "WHERE state <> 'resolved'"
        rows = await self._db.fetchall(
            f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
            (limit,),
        )
        return [_record(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence: label → globs it mutes (all must match), who made it, why, until when."""

    id: int
    matchers: dict[str, tuple[str, ...]]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


def _silence(r: Row) -> Silence:
    if r["matchers"]:
        matchers = {str(k): tuple(str(g) for g in v) for k, v in json.loads(r["matchers"]).items()}
    else:  # the old form: one host, optionally one kind
        matchers = {"host": (r["host"],), **({"kind": (r["kind"],)} if r["kind"] else {})}
    return Silence(
        id=int(r["id"]),
        matchers=matchers,
        starts_at=from_epoch(float(r["starts_at"])),
        ends_at=from_epoch(float(r["ends_at"])),
        reason=r["reason"],
        created_by=r["created_by"],
    )


class SilenceRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        matchers: dict[str, tuple[str, ...]],
        ends_at: datetime,
        reason: str,
        by: str,
        now: datetime,
    ) -> Silence:
        hosts = matchers.get("host", ("*",))
        kinds = matchers.get("kind", ())
        row = await self._db.fetchone(
            "INSERT INTO silences (host, kind, starts_at, ends_at, reason, created_by, created_at, matchers)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                "|".join(hosts),
                "|".join(kinds) or None,
                to_epoch(now),
                to_epoch(ends_at),
                reason,
                by,
                to_epoch(now),
                json.dumps({k: list(v) for k, v in matchers.items()}, sort_keys=True),
            ),
        )
        if row is None:
            raise StoreError("INSERT … RETURNING returned no row for a new silence")
        return _silence(row)

    async def cancel_host(self, host: str, *, by: str, now: datetime) -> int:
        """End every active silence of ``host`` now; the number ended."""
        return await self._db.execute(
            "UPDATE silences SET ends_at = ?, cancelled_by = ?, cancelled_at = ?"
            " WHERE host = ? AND ends_at > ? AND cancelled_at IS NULL",
            (to_epoch(now), by, to_epoch(now), host, to_epoch(now)),
        )

    async def cancel(self, silence_id: int, *, by: str, now: datetime) -> Silence | None:
        """End one active silence now; None when no active silence has that id."""
        row = await self._db.fetchone(
            "UPDATE silences SET ends_at = ?, cancelled_by = ?, cancelled_at = ?"
            " WHERE id = ? AND ends_at > ? AND cancelled_at IS NULL RETURNING *",
            (to_epoch(now), by, to_epoch(now), silence_id, to_epoch(now)),
        )
        return None if row is None else _silence(row)

    async def active(self, now: datetime) -> list[Silence]:
        """Silences in force now, the one ending first first."""
        rows = await self._db.fetchall(
            "SELECT * FROM silences WHERE starts_at <= ? AND ends_at > ? ORDER BY ends_at",
            (to_epoch(now), to_epoch(now)),
        )
        return [_silence(r) for r in rows]


class HandledEventRepo:
    """vCenter event keys already turned into signals, so a restart resumes without re-alerting."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def mark(self, vcenter: str, key: int, now: float) -> bool:
        """Record ``key`` as handled; False when it already was."""
        changed = await self._db.execute(
            "INSERT INTO vcenter_events (vcenter, event_key, handled_at) VALUES (?, ?, ?)"
            " ON CONFLICT (vcenter, event_key) DO NOTHING",
            (vcenter, key, now),
        )
        return changed > 0

    async def last_key(self, vcenter: str) -> int | None:
        row = await self._db.fetchone(
            "SELECT MAX(event_key) AS k FROM vcenter_events WHERE vcenter = ?", (vcenter,)
        )
        return None if row is None or row["k"] is None else int(row["k"])

    async def prune(self, vcenter: str, keep_after: float) -> int:
        """Forget keys handled before ``keep_after`` except the newest (the resume point)."""
        return await self._db.execute(
            "DELETE FROM vcenter_events WHERE vcenter = ? AND handled_at < ?"
            " AND event_key < (SELECT MAX(event_key) FROM vcenter_events WHERE vcenter = ?)",
            (vcenter, keep_after, vcenter),
        )
