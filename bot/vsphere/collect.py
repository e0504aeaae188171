"""Worker-thread side of the inventory: one full retrieval, and a WaitForUpdatesEx watch.

``full_refresh`` sends one RetrievePropertiesEx (+ continuation pages) over the session's
inventory ContainerView: made on the first refresh of a login and kept (``Session.kept``), since
vCenter keeps a view's contents current itself and destroys it at logout; making and
destroying one per refresh cost two round trips (~4 ms of a 1,000-host refresh). A view the
server no longer knows (``ManagedObjectNotFound``) is made again once.

``Watch`` owns a private PropertyCollector with one filter on the same paths; ``Watch.next``
blocks in WaitForUpdatesEx for at most ``wait_seconds`` and folds the answer into its
``Snapshot``; with an ``EventFeed`` the same collector also carries a filter on the feed's
EventHistoryCollector ``latestPage``, whose changes go to the feed (one loop for hosts and events).
Both run only inside ``VSphere``'s executor and return plain Python values.
"""

from __future__ import annotations

import contextlib
import http.client

from pyVmomi import vim

from bot.vsphere.eventfeed import EVENT_FIELDS, EventFeed
from bot.vsphere.host_retrieval import FIELDS, PAGE_SIZE, PROPERTY_SETS, Snapshot, retrieve_all
from bot.vsphere.session import Session
from bot.vsphere.soap import (
    MoRef,
    ObjectContent,
    SoapFault,
    create_filter_request,
    filter_spec,
    method_request,
    parse_moref,
    parse_updates,
    wait_request,
)

_VIEW_TYPES = [vim.HostSystem, vim.ComputeResource, vim.Folder, vim.Datacenter, vim.Datastore]


def _create_view(session: Session) -> MoRef:
    def create(si: vim.ServiceInstance) -> MoRef:
        content = session.content
        view = content.viewManager.CreateContainerView(content.rootFolder, _VIEW_TYPES, True)
        return MoRef("ContainerView", view._moId)

    result: MoRef = session.call(create)
    return result


def _destroy(session: Session, method: str, ref: MoRef) -> None:
    with contextlib.suppress(SoapFault, OSError, http.client.HTTPException):
        session.post(method_request(method, ref))


_VIEW_KEY = "inventory-view"


def full_refresh(session: Session, page_size: int = PAGE_SIZE) -> Snapshot:
    """RetrievePropertiesEx (+ ContinueRetrievePropertiesEx pages) over the kept view."""

    def retrieve() -> list[ObjectContent]:
        view = session.kept(_VIEW_KEY, lambda: _create_view(session))
        spec = filter_spec(view, PROPERTY_SETS)
        return retrieve_all(session.post, session.property_collector, spec, page_size)

    try:
        objects = retrieve()
    except SoapFault as fault:
        session.forget(_VIEW_KEY)
        if fault.kind != "ManagedObjectNotFound":
            raise
        objects = retrieve()
    return Snapshot(objects, adopt=True)


class Watch:
    """A filter on the inventory paths and the WaitForUpdatesEx version that follows it."""

    def __init__(
        self, session: Session, max_object_updates: int = PAGE_SIZE, events: EventFeed | None = None
    ) -> None:
        self._session = session
        self._max = max_object_updates
        self.snapshot = Snapshot()
        self._view = _create_view(session)

        def create_collector(si: vim.ServiceInstance) -> MoRef:
            pc = session.content.propertyCollector.CreatePropertyCollector()
            return MoRef("PropertyCollector", pc._moId)

        self._collector: MoRef = session.call(create_collector)
        spec = filter_spec(self._view, PROPERTY_SETS)
        parse_moref(session.post(create_filter_request(self._collector, spec)))
        self._events = events
        self._keep = FIELDS
        if events is not None:
            parse_moref(session.post(create_filter_request(self._collector, events.open(session))))
            self._keep = FIELDS | EVENT_FIELDS
        self._version = ""

    def next(self, wait_seconds: int) -> bool:
        """Wait for changes; True when the snapshot changed. The first call loads everything."""
        changed = False
        while True:
            payload = self._session.post(
                wait_request(self._collector, self._version, wait_seconds, self._max)
            )
            updates = parse_updates(payload, self._keep)
            if updates is None:
                return changed
            if self._events is not None:
                updates = self._events.split(updates)
            if not self._version:
                self.snapshot = Snapshot()
            self._version = updates.version
            changed = self.snapshot.apply(updates) > 0 or changed
            if not updates.truncated:
                return changed
            wait_seconds = 0  # the rest of a truncated set is already waiting

    def close(self) -> None:
        if self._events is not None and self._events.ref is not None:
            _destroy(self._session, "DestroyCollector", self._events.ref)
        _destroy(self._session, "DestroyPropertyCollector", self._collector)
        _destroy(self._session, "DestroyView", self._view)
