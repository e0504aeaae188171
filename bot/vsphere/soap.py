"""Raw SOAP for the two PropertyCollector calls that carry the whole inventory.

pyvmomi's deserialiser reads about 7 MB/s of XML, which at thousands of hosts costs more than
vCenter's answer itself (measured in benchmarks/inventory.py). So RetrievePropertiesEx,
ContinueRetrievePropertiesEx and WaitForUpdatesEx are written and parsed here with the C
ElementTree parser (the inventory refresh scans its answer faster still, bot/vsphere/soap_scan.py,
and comes here only for answers the scanner declines); login, views and filters stay with
pyvmomi.

Parsed values are plain Python: ``str``/``int``/``bool``/``datetime`` for xsd scalars, ``MoRef``
for managed object references, ``list`` for ``ArrayOf…`` values and ``Data`` (a dict with the
xsi:type in ``Data.type``) for data objects, whose repeated fields are lists.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

_SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_VIM = "{urn:vim25}"
_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)


class SoapFault(Exception):
    """A SOAP fault from vCenter; ``kind`` is the vim fault type (``NotAuthenticated``, …)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class MoRef:
    type: str
    value: str


class _Repeated(list[Any]):
    """A field that appeared more than once in a data object."""


class Data(dict[str, Any]):
    """A vim data object: field name → value, with its xsi:type."""

    __slots__ = ("type",)

    def __init__(self, type_: str) -> None:
        super().__init__()
        self.type = type_


@dataclass(frozen=True, slots=True)
class PropertySet:
    """What to collect: leaf paths per managed object type."""

    type: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObjectContent:
    obj: MoRef
    props: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RetrievePage:
    objects: tuple[ObjectContent, ...]
    token: str | None


@dataclass(frozen=True, slots=True)
class ObjectUpdate:
    kind: str  # enter | modify | leave
    obj: MoRef
    changes: tuple[tuple[str, str, Any], ...]  # (name, op, value): op assign | add | remove | indirectRemove


@dataclass(frozen=True, slots=True)
class UpdateSet:
    version: str
    truncated: bool
    objects: tuple[ObjectUpdate, ...]


def _moref(tag: str, ref: MoRef) -> str:
    return f'<{tag} type="{escape(ref.type)}">{escape(ref.value)}</{tag}>'


def _this(collector: MoRef) -> str:
    return _moref("_this", collector)


def filter_spec(view: MoRef, props: Iterable[PropertySet]) -> str:
    """A PropertyFilterSpec over everything a ContainerView shows, collecting only ``props``."""
    prop_sets = "".join(
        f"<propSet><type>{escape(p.type)}</type>"
        + "".join(f"<pathSet>{escape(path)}</pathSet>" for path in p.paths)
        + "</propSet>"
        for p in props
    )
    return (
        f"{prop_sets}<objectSet>{_moref('obj', view)}<skip>true</skip>"
        '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type>'
        "<path>view</path><skip>false</skip></selectSet></objectSet>"
    )


def retrieve_request(collector: MoRef, spec: str, max_objects: int) -> bytes:
    body = (
        f'<RetrievePropertiesEx xmlns="urn:vim25">{_this(collector)}<specSet>{spec}</specSet>'
        f"<options><maxObjects>{max_objects}</maxObjects></options></RetrievePropertiesEx>"
    )
    return _ENVELOPE.format(body=body).encode()


def continue_request(collector: MoRef, token: str) -> bytes:
    body = (
        f'<ContinueRetrievePropertiesEx xmlns="urn:vim25">{_this(collector)}'
        f"<token>{escape(token)}</token></ContinueRetrievePropertiesEx>"
    )
    return _ENVELOPE.format(body=body).encode()


def wait_request(collector: MoRef, version: str, max_wait_seconds: int, max_object_updates: int) -> bytes:
    body = (
        f'<WaitForUpdatesEx xmlns="urn:vim25">{_this(collector)}<version>{escape(version)}</version>'
        f"<options><maxWaitSeconds>{max_wait_seconds}</maxWaitSeconds>"
        f"<maxObjectUpdates>{max_object_updates}</maxObjectUpdates></options></WaitForUpdatesEx>"
    )
    return _ENVELOPE.format(body=body).encode()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _scalar(xsi: str, text: str) -> Any:
    kind = xsi.rpartition(":")[2]
    if kind in ("int", "long", "short", "byte"):
        return int(text)
    if kind == "boolean":
        return text == "true"
    if kind == "dateTime":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


def value(elem: ET.Element, keep: frozenset[str] | None = None) -> Any:
    """Convert one value element (a ``val``, a field, an array item) to Python.

    With ``keep``, data-object fields not named in it are skipped (at every depth): the
    inventory needs a dozen fields out of hundreds, and converting is the costly part.
    """
    xsi = elem.get(_XSI_TYPE, "")
    ref_type = elem.get("type")
    if xsi.startswith("ArrayOf"):
        return [value(child, keep) for child in elem]
    if (xsi.endswith("ManagedObjectReference") or (ref_type is not None and not xsi)) and len(elem) == 0:
        return MoRef(ref_type or "", elem.text or "")
    if len(elem) == 0:
        return _scalar(xsi, elem.text or "") if xsi else (elem.text or "")
    data = Data(xsi.rpartition(":")[2])
    for child in elem:
        name = _local(child.tag)
        if keep is not None and name not in keep:
            continue
        item = value(child, keep)
        if name not in data:
            data[name] = item
        elif isinstance(data[name], _Repeated):
            data[name].append(item)
        else:
            data[name] = _Repeated([data[name], item])
    return data


def as_list(field: Any) -> list[Any]:
    """A repeated field as a list, whether it appeared zero, one or several times."""
    if field is None:
        return []
    if isinstance(field, list):
        return field
    return [field]


# vcsim (Go encoding/xml) declares the xsi namespace again on every value under another prefix;
# folding that back to the envelope's ``xsi`` prefix makes the document a third smaller.
_GO_XSI_DECL = b' xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"'


def _body(payload: bytes) -> ET.Element:
    if _GO_XSI_DECL in payload[:4096] or _GO_XSI_DECL in payload[-65536:]:
        payload = payload.replace(_GO_XSI_DECL, b"").replace(b"XMLSchema-instance:type=", b"xsi:type=")
    root = ET.fromstring(payload)  # noqa: S314 - vCenter's answer over a verified or pinned TLS session
    body = root.find(f"{{{_SOAPENV}}}Body")
    if body is None or len(body) == 0:
        raise SoapFault("InvalidResponse", "no SOAP body")
    first = body[0]
    if _local(first.tag) == "Fault":
        message = first.findtext("faultstring") or ""
        detail = first.find("detail")
        kind = "SoapFault"
        if detail is not None and len(detail) > 0:
            fault = detail[0]
            kind = (
                fault.get(_XSI_TYPE, "").rpartition(":")[2] or _local(fault.tag).removesuffix("Fault") or kind
            )
        raise SoapFault(kind, message)
    return first


def parse_retrieve(payload: bytes, keep: frozenset[str] | None = None) -> RetrievePage:
    """A RetrievePropertiesEx / ContinueRetrievePropertiesEx response: objects and the next token."""
    response = _body(payload)
    returnval = response.find(f"{_VIM}returnval")
    if returnval is None:
        return RetrievePage(objects=(), token=None)
    objects = []
    for obj in returnval.iterfind(f"{_VIM}objects"):
        ref_elem = obj.find(f"{_VIM}obj")
        if ref_elem is None:
            continue
        props = {}
        for prop in obj.iterfind(f"{_VIM}propSet"):
            val = prop.find(f"{_VIM}val")
            props[prop.findtext(f"{_VIM}name") or ""] = None if val is None else value(val, keep)
        objects.append(ObjectContent(MoRef(ref_elem.get("type", ""), ref_elem.text or ""), props))
    return RetrievePage(objects=tuple(objects), token=returnval.findtext(f"{_VIM}token"))


def parse_updates(payload: bytes, keep: frozenset[str] | None = None) -> UpdateSet | None:
    """A WaitForUpdatesEx response; None when it timed out without changes."""
    response = _body(payload)
    returnval = response.find(f"{_VIM}returnval")
    if returnval is None:
        return None
    updates = []
    for filter_set in returnval.iterfind(f"{_VIM}filterSet"):
        for obj in filter_set.iterfind(f"{_VIM}objectSet"):
            ref_elem = obj.find(f"{_VIM}obj")
            if ref_elem is None:
                continue
            changes = []
            for change in obj.iterfind(f"{_VIM}changeSet"):
                val = change.find(f"{_VIM}val")
                changes.append(
                    (
                        change.findtext(f"{_VIM}name") or "",
                        change.findtext(f"{_VIM}op") or "assign",
                        None if val is None else value(val, keep),
                    )
                )
            ref = MoRef(ref_elem.get("type", ""), ref_elem.text or "")
            updates.append(ObjectUpdate(obj.findtext(f"{_VIM}kind") or "modify", ref, tuple(changes)))
    return UpdateSet(
        version=returnval.findtext(f"{_VIM}version") or "",
        truncated=(returnval.findtext(f"{_VIM}truncated") or "false") == "true",
        objects=tuple(updates),
    )


def raise_fault(payload: bytes) -> None:
    """Raise the SoapFault an HTTP 500 answer carries (parsing it; returns if there is none)."""
    _body(payload)


def create_filter_request(collector: MoRef, spec: str) -> bytes:
    body = (
        f'<CreateFilter xmlns="urn:vim25">{_this(collector)}<spec>{spec}</spec>'
        "<partialUpdates>false</partialUpdates></CreateFilter>"
    )
    return _ENVELOPE.format(body=body).encode()


def method_request(method: str, this: MoRef) -> bytes:
    """A call without arguments (DestroyView, DestroyPropertyCollector, CancelWaitForUpdates)."""
    return _ENVELOPE.format(body=f'<{method} xmlns="urn:vim25">{_this(this)}</{method}>').encode()


def parse_moref(payload: bytes) -> MoRef:
    returnval = _body(payload).find(f"{_VIM}returnval")
    if returnval is None:
        raise SoapFault("InvalidResponse", "no returnval")
    return MoRef(returnval.get("type", ""), returnval.text or "")
