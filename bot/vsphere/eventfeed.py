"""Worker-thread side of the vCenter event watch: one EventHistoryCollector per session.

``EventFeed.open`` creates the collector (whole inventory, page size ``PAGE_SIZE``) and returns the
filter spec on its ``latestPage``; ``collect.Watch`` adds that filter to the same PropertyCollector
as the host paths, so one WaitForUpdatesEx loop carries both. Every ``latestPage`` value the watch
sees goes to ``take_page``, which keeps the events newer than ``last_key`` as ``VCenterEvent``
values (no pyVmomi object leaves this module). When a page is full and its oldest event is still
newer than ``last_key`` (a restart, an outage, a burst), it reads back with ResetCollector +
ReadPreviousEvents until it reaches ``last_key``. A feed that starts with no ``last_key`` at all (the
first start ever) begins after the newest event instead of replaying history.

Key order is vCenter's own event order; ``last_key`` only grows, except when a new session shows a
newest key below it (vCenter's event history was reset or restored): then it begins after that one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from pyVmomi import vim, vmodl

from bot.vsphere.events import VCenterEvent
from bot.vsphere.session import Session
from bot.vsphere.soap import Data, MoRef, SoapFault, UpdateSet, as_list

log = logging.getLogger("esxbot.vsphere.events")

PAGE_SIZE = 100
MAX_READBACK_PAGES = 50  # 5,000 events: older ones are reported as possibly missed
# Event fields the conversion reads (on top of the inventory's FIELDS, which has key/name/message).
EVENT_FIELDS = frozenset(
    {"key", "eventTypeId", "fullFormattedMessage", "message", "host", "name", "createdTime", "objectName"}
)


def _key(raw: Any) -> int | None:
    try:
        return int(str(raw).strip())
    except ValueError:
        return None


def _time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def event_from_data(data: Any) -> VCenterEvent | None:
    """A ``latestPage`` item parsed by ``soap`` → ``VCenterEvent``; None (logged) when unusable."""
    if not isinstance(data, Data):
        return None
    key = _key(data.get("key"))
    if key is None:
        log.warning("vCenter event without a usable key skipped: %s", data.type)
        return None
    host_arg = data.get("host")
    host = host_arg.get("name") if isinstance(host_arg, Data) else None
    if not host and data.get("objectType") == "HostSystem":
        host = data.get("objectName")
    message = data.get("fullFormattedMessage") or data.get("message") or ""
    type_id = data.get("eventTypeId")
    return VCenterEvent(
        key=key,
        type=data.type,
        message=str(message),
        host=str(host) if host else None,
        event_type_id=str(type_id) if type_id else None,
        created=_time(data.get("createdTime")),
    )


def event_from_vim(event: Any) -> VCenterEvent | None:
    """A pyVmomi ``vim.event.Event`` → ``VCenterEvent`` (worker thread only)."""
    key = getattr(event, "key", None)
    if not isinstance(key, int):
        return None
    host_arg = getattr(event, "host", None)
    host = getattr(host_arg, "name", None) or getattr(event, "objectName", None)
    return VCenterEvent(
        key=key,
        type=str(getattr(type(event), "_wsdlName", type(event).__name__)),
        message=str(getattr(event, "fullFormattedMessage", None) or getattr(event, "message", None) or ""),
        host=str(host) if host else None,
        event_type_id=getattr(event, "eventTypeId", None) or None,
        created=getattr(event, "createdTime", None),
    )


class EventFeed:
    """The events of one vCenter newer than ``last_key``, across sessions and reconnects."""

    def __init__(self, after: int | None, page_size: int = PAGE_SIZE) -> None:
        self.last_key = after
        self._page_size = page_size
        self._lock = threading.Lock()
        self._pending: list[VCenterEvent] = []
        self._collector: Any = None  # pyVmomi EventHistoryCollector of the current session
        self.ref: MoRef | None = None
        self._first_page = False
        self._drained_key: int | None = None

    def open(self, session: Session) -> str:
        """Create this session's collector; returns the PropertyFilterSpec body on its latestPage."""

        def create(si: Any) -> Any:
            content = session.content
            spec = vim.event.EventFilterSpec(  # type: ignore[no-untyped-call]
                entity=vim.event.EventFilterSpec.ByEntity(  # type: ignore[no-untyped-call]
                    entity=content.rootFolder, recursion="all"
                )
            )
            collector = content.eventManager.CreateCollectorForEvents(spec)
            collector.SetCollectorPageSize(self._page_size)
            return collector

        try:
            self._collector = session.call(create)
        except vmodl.MethodFault as exc:
            raise SoapFault(type(exc).__name__, f"cannot create an event collector: {exc}") from exc
        self.ref = MoRef("EventHistoryCollector", self._collector._moId)
        self.new_session()
        ref = f'<obj type="EventHistoryCollector">{escape(self.ref.value)}</obj>'
        return (
            "<propSet><type>EventHistoryCollector</type><pathSet>latestPage</pathSet></propSet>"
            f"<objectSet>{ref}<skip>false</skip></objectSet>"
        )

    def new_session(self) -> None:
        """The next page is a new collector's first: the resume point is decided on it."""
        self._first_page = True

    def split(self, updates: UpdateSet) -> UpdateSet:
        """Take this feed's latestPage changes out of a WaitForUpdatesEx answer; returns the rest."""
        rest = []
        for update in updates.objects:
            if update.obj != self.ref:
                rest.append(update)
                continue
            for name, _op, val in update.changes:
                if name == "latestPage":
                    self.take_page(as_list(val))
        return UpdateSet(updates.version, updates.truncated, tuple(rest))

    def take_page(self, items: Iterable[Any]) -> None:
        events = [e for e in map(event_from_data, items) if e is not None]
        first, self._first_page = self._first_page, False
        newest = max((e.key for e in events), default=0)
        if first and self.last_key is None:
            self.last_key = newest
            log.info("vCenter events: first start, beginning after event %d", newest)
            return
        if first and events and newest < (self.last_key or 0):
            log.warning(
                "vCenter events: newest key %d is below the last handled %s (event history reset or "
                "restored); beginning after %d",
                newest,
                self.last_key,
                newest,
            )
            with self._lock:
                self.last_key = newest
            return
        if self.last_key is not None and len(events) >= self._page_size:
            oldest = min(e.key for e in events)
            if oldest > self.last_key + 1:
                events += self._read_back(oldest)
        self._keep(events)

    def _read_back(self, oldest: int) -> list[VCenterEvent]:
        """Older events down to ``last_key`` through ReadPreviousEvents (bounded)."""
        found: list[VCenterEvent] = []
        try:
            self._collector.ResetCollector()
            for _ in range(MAX_READBACK_PAGES):
                raw = self._collector.ReadPreviousEvents(self._page_size) or []
                page = [e for e in map(event_from_vim, raw) if e is not None]
                found += page
                if not page or min(e.key for e in page) <= (self.last_key or 0):
                    return found
            log.warning(
                "vCenter events: more than %d events since event %s; older ones may be missed",
                MAX_READBACK_PAGES * self._page_size,
                self.last_key,
            )
        except vmodl.MethodFault as exc:
            log.warning("vCenter events: read-back before event %d failed: %s", oldest, exc)
        return found

    def _keep(self, events: Iterable[VCenterEvent]) -> None:
        floor = self.last_key if self.last_key is not None else -1
        fresh = sorted({e.key: e for e in events if e.key > floor}.values(), key=lambda e: e.key)
        if not fresh:
            return
        with self._lock:
            self._pending.extend(fresh)
            self.last_key = fresh[-1].key

    def drain(self) -> tuple[list[VCenterEvent], int] | None:
        """The events kept since the last drain and the newest key seen; None when nothing moved."""
        with self._lock:
            if self.last_key is None or (not self._pending and self.last_key == self._drained_key):
                return None
            pending, self._pending = self._pending, []
            self._drained_key = self.last_key
            return pending, self.last_key
