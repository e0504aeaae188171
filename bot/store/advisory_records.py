"""Security advisories and KEV entries as stored documents (the advisory package owns their shape).

An advisory row keeps the merged document, its digest, the list API's ``updated`` value of the row
it came from (so an unchanged row is not fetched again) and the digest last announced (so a restart
neither repeats nor loses an announcement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import to_epoch
from bot.store.sql.base import Database


@dataclass(frozen=True, slots=True)
class StoredAdvisory:
    id: str
    doc: dict[str, Any]
    digest: str
    list_updated: str | None
    announced_digest: str | None


def _doc(text: str) -> dict[str, Any]:
    """A stored document; ``{}`` when it is not readable JSON (the advisory package then replaces it)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


class AdvisoryRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, advisory_id: str) -> StoredAdvisory | None:
        row = await self._db.fetchone("SELECT * FROM advisories WHERE id = ?", (advisory_id,))
        if row is None:
            return None
        return StoredAdvisory(
            row["id"], _doc(row["doc"]), row["digest"], row["list_updated"], row["announced_digest"]
        )

    async def all(self) -> list[StoredAdvisory]:
        rows = await self._db.fetchall("SELECT * FROM advisories ORDER BY id DESC")
        return [
            StoredAdvisory(r["id"], _doc(r["doc"]), r["digest"], r["list_updated"], r["announced_digest"])
            for r in rows
        ]

    async def save(
        self,
        advisory_id: str,
        doc: dict[str, Any],
        digest: str,
        *,
        source: str,
        now: datetime,
        list_updated: str | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO advisories (id, doc, digest, list_updated, source, first_seen, changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, digest = excluded.digest,"
            " list_updated = COALESCE(excluded.list_updated, advisories.list_updated),"
            " changed_at = excluded.changed_at",
            (advisory_id, json.dumps(doc), digest, list_updated, source, to_epoch(now), to_epoch(now)),
        )

    async def mark_announced(self, advisory_id: str, digest: str) -> None:
        await self._db.execute(
            "UPDATE advisories SET announced_digest = ? WHERE id = ?", (digest, advisory_id)
        )

    async def kev(self) -> list[dict[str, Any]]:
        rows = await self._db.fetchall("SELECT doc FROM kev_entries ORDER BY cve")
        return [_doc(r["doc"]) for r in rows]

    async def add_kev(self, cve: str, doc: dict[str, Any], now: datetime) -> bool:
        """Record a KEV entry; True when the CVE was not listed before."""
        changed = await self._db.execute(
            "INSERT INTO kev_entries (cve, doc, first_seen) VALUES (?, ?, ?) ON CONFLICT (cve) DO NOTHING",
            (cve, json.dumps(doc), to_epoch(now)),
        )
        return changed > 0
