"""The advisory sources and the loop that polls them, with the release poller's conventions.

Kinds (configured in ``sources:`` next to the release sources):
- ``vmsa-list``: Broadcom's list API, POSTed page by page (``segment``, ``page_size``); each page is a
  conditional request and an unchanged page (304, or the same bytes as last time) costs no parse. A
  row that is new, or whose ``updated`` changed, and concerns ESXi has its advisory page fetched.
- ``vmsa``: one advisory page; ``cve``: one CVE JSON 5 record (fills fixed versions in); ``kev``: the
  CISA KEV catalog (a CVE newly listed re-announces its advisory and may page).

As for releases: the first successful poll of a source only primes it (stored, not announced);
errors back off per source and show in ``sources``; what was announced is stored with the advisory
(its digest), so a restart neither repeats nor loses a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.advisories.list_api import ListRow, parse_list, request_body
from bot.advisories.model import Advisory, KevEntry, advisory_from_dict, advisory_to_dict, changes, merge
from bot.advisories.page import parse_page
from bot.advisories.records import parse_cve, parse_kev
from bot.advisories.service import AdvisoryService, kev_to_dict
from bot.builds import BuildCatalog
from bot.clock import Clock
from bot.releases.sources.fetch import Backoff, Fetcher, FetchError, FetchResult
from bot.releases.sources.poller import SourceConfig, SourceKind
from bot.store.advisory_records import AdvisoryRepo
from bot.store.kv import KeyValueRepo
from bot.store.release_records import ReleaseRepo, SourceState

log = logging.getLogger(__name__)

ADVISORY_KINDS = frozenset({SourceKind.VMSA_LIST, SourceKind.VMSA, SourceKind.CVE, SourceKind.KEV})
MAX_PAGES = 20  # of the list API: 2,000 advisories at 100 a page


@dataclass(frozen=True, slots=True)
class AdvisoryReport:
    source: str
    new: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    kev_added: tuple[str, ...] = ()
    not_modified: bool = False
    parsed: int = 0  # documents parsed (0 on an unchanged poll)
    error: str | None = None
    warnings: tuple[str, ...] = ()
    primed: bool = False


@dataclass
class _Run:
    """What one poll found, collected while it runs."""

    primed: bool
    new: list[str]
    updated: list[str]
    kev_added: list[str]
    warnings: list[str]
    parsed: int = 0


def _readable(doc: dict[str, object]) -> Advisory | None:
    try:
        return advisory_from_dict(doc)
    except (KeyError, TypeError, ValueError):
        log.warning("stored advisory %s is unreadable; replaced by the new reading", doc.get("id"))
        return None


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class AdvisoryPoller:
    def __init__(
        self,
        sources: Sequence[SourceConfig],
        fetcher: Fetcher,
        states: ReleaseRepo,
        repo: AdvisoryRepo,
        kv: KeyValueRepo,
        clock: Clock,
        catalog: BuildCatalog,
        service: AdvisoryService,
        *,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sources = tuple(s for s in sources if s.kind in ADVISORY_KINDS)
        self._fetcher = fetcher
        self._states = states
        self._repo = repo
        self._kv = kv
        self._clock = clock
        self._catalog = catalog
        self._service = service
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def poll_all(self) -> list[AdvisoryReport]:
        # KEV last: a CVE it lists for the first time then finds its advisory already stored
        ordered = sorted((s for s in self.sources if s.enabled), key=lambda s: s.kind is SourceKind.KEV)
        reports = [await self.poll(source) for source in ordered]
        await self._service.reconcile()
        return reports

    async def run(self) -> None:
        """Poll each enabled source when due; re-check open pages every round, until cancelled."""
        while True:
            now = self._clock.now()
            waits: list[float] = []
            for source in sorted(self.sources, key=lambda s: s.kind is SourceKind.KEV):
                if not source.enabled:
                    continue
                state = await self._states.state(source.name)
                if state.next_poll is None or state.next_poll <= now:
                    await self.poll(source)
                    state = await self._states.state(source.name)
                if state.next_poll is not None:
                    waits.append((state.next_poll - self._clock.now()).total_seconds())
            await self._service.reconcile()
            await self._clock.sleep(min([300.0, *(w for w in waits if w > 0)]))

    async def poll(self, source: SourceConfig) -> AdvisoryReport:
        """One source, once; never raises for source trouble."""
        state = await self._states.state(source.name)
        run = _Run(not state.primed, [], [], [], [])
        try:
            if source.kind is SourceKind.VMSA_LIST:
                ok, unchanged, result = await self._poll_list(source, run)
            else:
                ok, unchanged, result = await self._poll_document(source, state, run)
        except FetchError as exc:
            return await self._failed(source, state, str(exc))
        if not ok:
            return await self._failed(
                source, state, "; ".join(run.warnings) or "nothing usable in the response"
            )
        await self._succeeded(source, state, result)
        if run.primed and (run.new or run.kev_added):
            log.info("advisory source %s primed (%d stored, not announced)", source.name, len(run.new))
        return AdvisoryReport(
            source.name,
            tuple(run.new),
            tuple(run.updated),
            tuple(run.kev_added),
            not_modified=unchanged,
            parsed=run.parsed,
            warnings=tuple(run.warnings),
            primed=run.primed,
        )

    # ----- list API ---------------------------------------------------------------------------------
    async def _poll_list(self, source: SourceConfig, run: _Run) -> tuple[bool, bool, FetchResult | None]:
        key = f"advisories:{source.name}:pages"
        try:
            saved = json.loads(await self._kv.get(key) or "{}")
            pages: dict[str, dict[str, str | None]] = dict(saved.get("pages", {}))
            last_page = int(saved.get("last_page", 0))
        except (ValueError, TypeError, AttributeError):
            log.warning(
                "advisory source %s: stored page validators unreadable; reading every page", source.name
            )
            pages, last_page = {}, 0
        unchanged = True
        usable = False
        page = 0
        while page <= min(last_page, MAX_PAGES - 1):
            known = pages.get(str(page), {})
            result = await self._fetcher.post_json(
                source.url,
                request_body(page, source.page_size, source.segment),
                etag=known.get("etag"),
                last_modified=known.get("last_modified"),
            )
            digest = _digest(result.body) if not result.not_modified else known.get("digest")
            if result.not_modified or digest == known.get("digest"):
                usable = True
                page += 1
                continue
            unchanged = False
            run.parsed += 1
            parsed = parse_list(result.body)
            run.warnings.extend(f"page {page}: {w}" for w in parsed.warnings)
            if not parsed.usable:
                break
            usable = True
            if page == 0 and parsed.last_page is not None:
                last_page = parsed.last_page
            complete = True
            for row in parsed.rows:
                complete = await self._row(source, row, run) and complete
            # a page whose advisory pages could not all be read is read again next time
            pages[str(page)] = {
                "etag": result.etag if complete else None,
                "last_modified": result.last_modified if complete else None,
                "digest": digest if complete else None,
            }
            page += 1
        await self._kv.set(key, json.dumps({"pages": pages, "last_page": last_page}))
        return usable, unchanged, None

    async def _row(self, source: SourceConfig, row: ListRow, run: _Run) -> bool:
        """Store a list row (and its page, fetched when new or updated); False when the page failed."""
        stored = await self._repo.get(row.advisory.id)
        told = stored is not None and stored.announced_digest == stored.digest
        if stored is not None and told and stored.list_updated == (row.advisory.updated or ""):
            return True
        found = row.advisory
        complete = True
        if row.concerns_esxi and source.follow_links and row.advisory.url:
            try:
                page = await self._fetcher.get(row.advisory.url)
                run.parsed += 1
                parsed = parse_page(page.body, url=row.advisory.url, catalog=self._catalog)
                run.warnings.extend(f"{row.advisory.id}: {w}" for w in parsed.warnings)
                if parsed.advisory is not None and parsed.advisory.id == row.advisory.id:
                    found = merge(found, parsed.advisory)
            except FetchError as exc:
                run.warnings.append(f"{row.advisory.id}: page {row.advisory.url}: {exc}")
                complete = False
        elif not row.concerns_esxi:
            return True  # Workstation-only and the like: nothing a host runs
        await self._record(
            source, found, run, list_updated=(row.advisory.updated or "") if complete else None
        )
        return complete

    # ----- single documents -------------------------------------------------------------------------
    async def _poll_document(
        self, source: SourceConfig, state: SourceState, run: _Run
    ) -> tuple[bool, bool, FetchResult | None]:
        result = await self._fetcher.get(source.url, etag=state.etag, last_modified=state.last_modified)
        if result.not_modified:
            return True, True, result
        run.parsed += 1
        if source.kind is SourceKind.KEV:
            kev = parse_kev(result.body)
            run.warnings.extend(kev.warnings)
            if not kev.usable:
                return False, False, result
            await self._kev(kev.entries, run)
            return True, False, result
        if source.kind is SourceKind.CVE:
            record = parse_cve(result.body, catalog=self._catalog)
            run.warnings.extend(record.warnings)
            found = record.advisory
        else:
            page = parse_page(result.body, url=source.url, catalog=self._catalog)
            run.warnings.extend(page.warnings)
            found = page.advisory
        if found is None:
            return False, False, result
        await self._record(source, found, run)
        return True, False, result

    async def _kev(self, entries: Sequence[KevEntry], run: _Run) -> None:
        now = self._clock.now()
        added: list[str] = []
        for entry in entries:
            doc = kev_to_dict(entry)
            if await self._repo.add_kev(doc["cve"], doc, now):
                added.append(doc["cve"])
        run.kev_added.extend(added)
        if run.primed or not added:
            return
        for advisory in await self._service.advisories():
            hits = [c for c in advisory.cve_ids if c in added]
            if hits:
                await self._service.announce(
                    advisory, key=f"advisory:{advisory.id}:kev:{','.join(hits)}", kev_added=hits
                )

    # ----- storing and telling ----------------------------------------------------------------------
    async def _record(
        self, source: SourceConfig, found: Advisory, run: _Run, *, list_updated: str | None = None
    ) -> None:
        now = self._clock.now()
        stored = await self._repo.get(found.id)
        old = _readable(stored.doc) if stored is not None else None
        if stored is not None and old is None:
            stored = None  # an unreadable stored document: this reading replaces it
        if old is None:
            merged = found
        elif source.kind is SourceKind.CVE:  # a record fills in what the advisory page does not say
            merged = merge(found, old)
        else:
            merged = merge(old, found)
        digest = merged.digest()
        if stored is not None and stored.digest == digest:
            if list_updated is not None and stored.list_updated != list_updated:
                await self._repo.save(
                    found.id, stored.doc, digest, source=source.name, now=now, list_updated=list_updated
                )
            if stored.announced_digest == digest:
                return
            # stored by a run that stopped before telling: tell now (the outbox key keeps it once)
        else:
            await self._repo.save(
                found.id,
                advisory_to_dict(merged),
                digest,
                source=source.name,
                now=now,
                list_updated=list_updated,
            )
            (run.new if stored is None else run.updated).append(found.id)
        if run.primed:
            await self._repo.mark_announced(found.id, digest)
            return
        said: list[str] = []
        if old is not None and stored is not None and stored.announced_digest is not None:
            said = changes(old, merged)
            if not said:
                await self._repo.mark_announced(found.id, digest)  # nothing a person would call a change
                return
        await self._service.announce(merged, key=f"advisory:{found.id}:{digest}", changed=said)
        await self._repo.mark_announced(found.id, digest)

    async def _succeeded(self, source: SourceConfig, state: SourceState, result: FetchResult | None) -> None:
        now = self._clock.now()
        delay = self._backoff.delay(source.interval, 0, self._rng)
        etag, modified = (result.etag, result.last_modified) if result else (None, None)
        await self._states.save_state(state.succeeded(now, now + timedelta(seconds=delay), etag, modified))

    async def _failed(self, source: SourceConfig, state: SourceState, error: str) -> AdvisoryReport:
        now = self._clock.now()
        delay = self._backoff.delay(source.interval, state.failures + 1, self._rng)
        log.warning(
            "advisory source %s failed (%d in a row, next try in %.0fs): %s",
            source.name,
            state.failures + 1,
            delay,
            error,
        )
        await self._states.save_state(state.failed(now, now + timedelta(seconds=delay), error))
        return AdvisoryReport(source.name, error=error)
