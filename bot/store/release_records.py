"""Releases and fixes read from sources, seen source entries, and per-source poll state."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from bot.clock import from_epoch, to_epoch
from bot.model import Fix, Release
from bot.store.sql.base import Database, Row


@dataclass(frozen=True, slots=True)
class SourceState:
    """What ``sources`` shows: last success, last error, next poll; plus the conditional-GET validators."""

    name: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    next_poll: datetime | None = None
    failures: int = 0
    etag: str | None = None
    last_modified: str | None = None
    primed: bool = False

    def succeeded(
        self, now: datetime, next_poll: datetime, etag: str | None, last_modified: str | None
    ) -> SourceState:
        """After a good poll: errors cleared, primed, the answer's validators kept (old ones if none)."""
        return replace(
            self,
            last_success=now,
            last_error=None,
            failures=0,
            next_poll=next_poll,
            etag=etag or self.etag,
            last_modified=last_modified or self.last_modified,
            primed=True,
        )

    def failed(self, now: datetime, next_poll: datetime, error: str) -> SourceState:
        """After a failed poll: one more failure in a row, the error and when to try again."""
        return replace(
            self, last_error=error, last_error_at=now, failures=self.failures + 1, next_poll=next_poll
        )


def _when(value: Any) -> datetime | None:
    return None if value is None else from_epoch(float(value))


def _release(row: Row, fixes: tuple[Fix, ...] = ()) -> Release:
    day = row["release_date"]
    return Release(
        line=row["line"],
        name=row["name"],
        build=int(row["build"]),
        release_date=date.fromisoformat(day) if day else None,
        iso_build=row["iso_build"],
        version=row["version"],
        notes_url=row["notes_url"],
        image_profiles=tuple(json.loads(row["image_profiles"])),
        bulletins=tuple(json.loads(row["bulletins"])),
        fixes=fixes,
    )


def _fix(row: Row) -> Fix:
    return Fix(
        pr=row["pr"],
        title=row["title"],
        text=row["body"],
        component=row["component"],
        cves=tuple(json.loads(row["cves"])),
    )


class ReleaseRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, release: Release, *, source: str, now: datetime) -> bool:
        """Store a release (and its fixes, if any); True when the build was not known before.

        A later source may fill in what an earlier one lacked (a catalog row first, its notes later):
        missing values and fixes are added, known ones are kept.
        """
        async with self._db.transaction():
            existing = await self._db.fetchone("SELECT * FROM releases WHERE build = ?", (release.build,))
            if existing is None:
                await self._db.execute(
                    "INSERT INTO releases (build, line, name, version, release_date, iso_build, notes_url,"
                    " image_profiles, bulletins, source, first_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        release.build,
                        release.line,
                        release.name,
                        release.version,
                        release.release_date.isoformat() if release.release_date else None,
                        release.iso_build,
                        release.notes_url,
                        json.dumps(list(release.image_profiles)),
                        json.dumps(list(release.bulletins)),
                        source,
                        to_epoch(now),
                    ),
                )
            else:
                await self._db.execute(
                    "UPDATE releases SET release_date = COALESCE(release_date, ?),"
                    " notes_url = COALESCE(notes_url, ?), iso_build = COALESCE(iso_build, ?) WHERE build = ?",
                    (
                        release.release_date.isoformat() if release.release_date else None,
                        release.notes_url,
                        release.iso_build,
                        release.build,
                    ),
                )
            for position, fix in enumerate(release.fixes):
                await self._db.execute(
                    "INSERT INTO release_fixes (build, pr, title, body, component, cves, position)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (build, pr) DO NOTHING",
                    (
                        release.build,
                        fix.pr,
                        fix.title,
                        fix.text,
                        fix.component,
                        json.dumps(list(fix.cves)),
                        position,
                    ),
                )
        return existing is None

    async def get(self, build: int) -> Release | None:
        row = await self._db.fetchone("SELECT * FROM releases WHERE build = ?", (build,))
        return None if row is None else _release(row, await self.fixes(build))

    async def all(self) -> list[Release]:
        """Every stored release with its fixes, newest date first."""
        rows = await self._db.fetchall("SELECT * FROM releases ORDER BY release_date DESC, build DESC")
        fix_rows = await self._db.fetchall("SELECT * FROM release_fixes ORDER BY build, position")
        by_build: dict[int, list[Fix]] = {}
        for fix_row in fix_rows:
            by_build.setdefault(int(fix_row["build"]), []).append(_fix(fix_row))
        return [_release(row, tuple(by_build.get(int(row["build"]), ()))) for row in rows]

    async def fixes(self, build: int) -> tuple[Fix, ...]:
        rows = await self._db.fetchall(
            "SELECT * FROM release_fixes WHERE build = ? ORDER BY position", (build,)
        )
        return tuple(_fix(r) for r in rows)

    async def mark_announced(self, build: int, now: datetime) -> None:
        await self._db.execute(
            "UPDATE releases SET announced_at = ? WHERE build = ? AND announced_at IS NULL",
            (to_epoch(now), build),
        )

    async def announced(self, build: int) -> bool:
        row = await self._db.fetchone("SELECT announced_at FROM releases WHERE build = ?", (build,))
        return row is not None and row["announced_at"] is not None

    async def seen(self, source: str, key: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 AS x FROM feed_seen WHERE source = ? AND entry_key = ?", (source, key)
        )
        return row is not None

    async def mark_seen(self, source: str, key: str, now: datetime) -> bool:
        """Record an entry; False when it was already seen."""
        changed = await self._db.execute(
            "INSERT INTO feed_seen (source, entry_key, seen_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source, entry_key) DO NOTHING",
            (source, key, to_epoch(now)),
        )
        return changed > 0

    async def state(self, name: str) -> SourceState:
        row = await self._db.fetchone("SELECT * FROM feed_sources WHERE name = ?", (name,))
        if row is None:
            return SourceState(name)
        return SourceState(
            name=name,
            last_success=_when(row["last_success"]),
            last_error=row["last_error"],
            last_error_at=_when(row["last_error_at"]),
            next_poll=_when(row["next_poll"]),
            failures=int(row["failures"]),
            etag=row["etag"],
            last_modified=row["last_modified"],
            primed=bool(row["primed"]),
        )

    async def save_state(self, state: SourceState) -> None:
        def epoch(moment: datetime | None) -> float | None:
            return None if moment is None else to_epoch(moment)

        await self._db.execute(
            "INSERT INTO feed_sources (name, last_success, last_error, last_error_at, next_poll, failures,"
            " etag, last_modified, primed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET last_success = excluded.last_success,"
            " last_error = excluded.last_error, last_error_at = excluded.last_error_at,"
            " next_poll = excluded.next_poll, failures = excluded.failures, etag = excluded.etag,"
            " last_modified = excluded.last_modified, primed = excluded.primed",
            (
                state.name,
                epoch(state.last_success),
                state.last_error,
                epoch(state.last_error_at),
                epoch(state.next_poll),
                state.failures,
                state.etag,
                state.last_modified,
                int(state.primed),
            ),
        )

    async def withdraw(
        self, build: int, reason: str, replaced_by: int | None, by: str, now: datetime
    ) -> None:
        """Record an admin's withdrawal of a build (the last word wins)."""
        await self._db.execute(
            "INSERT INTO release_withdrawals (build, reason, replaced_by, withdrawn_by, withdrawn_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (build) DO UPDATE SET reason = excluded.reason,"
            " replaced_by = excluded.replaced_by, withdrawn_by = excluded.withdrawn_by,"
            " withdrawn_at = excluded.withdrawn_at",
            (build, reason, replaced_by, by, now.timestamp()),
        )

    async def withdrawals(self) -> list[tuple[int, str, int | None]]:
        """(build, reason, replaced_by) of every recorded withdrawal."""
        rows = await self._db.fetchall("SELECT build, reason, replaced_by FROM release_withdrawals")
        return [
            (int(r["build"]), str(r["reason"]), None if r["replaced_by"] is None else int(r["replaced_by"]))
            for r in rows
        ]
