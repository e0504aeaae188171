"""Fast path for RetrievePropertiesEx answers: a byte scanner over the XML subset vCenter writes.

ElementTree turns a 1,000-host inventory answer into ~120,000 elements (about 0.08 s with GC
on) before any of it is read, and converting those elements costs more again. The scanner
instead walks the answer with ``bytes.find``: ``objects`` → ``propSet`` → ``name``/``val``, and
hands each ``val`` to a per-path decoder (bot/vsphere/hostprops.py) that picks out the few
fields it needs and jumps over the rest without tokenising it.

It relies on what vCenter and vcsim both write: UTF-8; vim25 as the default namespace, so
vim elements carry no prefix; fields in schema order (a base type's fields before a subtype's,
so the first ``<name>`` inside a volume is the volume's own); no CDATA sections, comments or
``>`` inside attribute values; no element nested in one of the same name on the paths the
decoders walk. An answer outside that subset (a fault, another encoding, a prefixed vim
namespace, an unterminated element) raises ``Unsupported``, and the caller parses it with
ElementTree instead (``soap.parse_retrieve``), so nothing is ever misread, only parsed slower.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.vsphere.soap import MoRef, ObjectContent, RetrievePage

# An element: (index of "<", start of its content, end of its content, index just past it).
# A self-closing element has an empty content at the end of its tag.
Span = tuple[int, int, int, int]
Decoder = Callable[[bytes, Span], Any]

_NAME_END = frozenset(b" \t\r\n/>")
_RESPONSES = (
    b'<RetrievePropertiesExResponse xmlns="urn:vim25">',
    b'<ContinueRetrievePropertiesExResponse xmlns="urn:vim25">',
)


class Unsupported(ValueError):
    """The answer uses XML the scanner does not read; parse it with ElementTree."""


def find(buf: bytes, name: bytes, start: int, end: int, *, last_close: bool = False) -> Span | None:
    """The first element called ``name`` whose start tag begins in ``buf[start:end]``.

    With ``last_close`` the element ends at the last ``</name>`` before ``end`` (for a ``val``,
    whose content may in principle hold elements of any name).
    """
    opener = b"<" + name
    width = len(opener)
    at = buf.find(opener, start, end)
    while at >= 0 and (at + width >= end or buf[at + width] not in _NAME_END):
        at = buf.find(opener, at + width, end)
    if at < 0:
        return None
    gt = buf.find(b">", at + width, end)
    if gt < 0:
        raise Unsupported(f"unterminated <{name.decode()}> tag")
    if buf[gt - 1] == 0x2F:  # "/>"
        return at, gt + 1, gt + 1, gt + 1
    closer = b"</" + name + b">"
    close = buf.rfind(closer, gt + 1, end) if last_close else buf.find(closer, gt + 1, end)
    if close < 0:
        raise Unsupported(f"<{name.decode()}> without its end tag")
    return at, gt + 1, close, close + len(closer)


def children(buf: bytes, name: bytes, start: int, end: int) -> Iterator[Span]:
    """Successive elements called ``name`` in ``buf[start:end]`` (array items, repeated fields)."""
    opener, closer = b"<" + name, b"</" + name + b">"
    width = len(opener)
    at = buf.find(opener, start, end)
    while at >= 0:
        mark = buf[at + width] if at + width < end else 0
        if mark == 0x3E:  # ">"
            content = at + width + 1
        elif mark in _NAME_END:
            gt = buf.find(b">", at + width, end)
            if gt < 0:
                raise Unsupported(f"unterminated <{name.decode()}> tag")
            if buf[gt - 1] == 0x2F:  # "/>"
                yield at, gt + 1, gt + 1, gt + 1
                at = buf.find(opener, gt + 1, end)
                continue
            content = gt + 1
        else:  # a longer name with this prefix
            at = buf.find(opener, at + width, end)
            continue
        close = buf.find(closer, content, end)
        if close < 0:
            raise Unsupported(f"<{name.decode()}> without its end tag")
        yield at, content, close, close + len(closer)
        at = buf.find(opener, close + len(closer), end)


def text(buf: bytes, span: Span) -> str:
    raw = buf[span[1] : span[2]]
    if b"<" in raw:
        raise Unsupported("element content where text was expected")
    return html.unescape(raw.decode()) if b"&" in raw else raw.decode()


def attribute(buf: bytes, span: Span, marker: bytes) -> str | None:
    """An attribute of the element's start tag; ``marker`` is e.g. ``b' type="'`` or ``b':type="'``."""
    at = buf.find(marker, span[0], span[1])
    if at < 0:
        return None
    at += len(marker)
    return buf[at : buf.find(b'"', at, span[1])].decode()


def xsi_type(buf: bytes, span: Span) -> str:
    """The xsi:type without its prefix (the xsi prefix itself varies: ``xsi``, ``XMLSchema-instance``)."""
    return (attribute(buf, span, b':type="') or "").rpartition(":")[2]


def _check(payload: bytes) -> int:
    """Where the response element's content starts; raises Unsupported outside the subset."""
    head = payload[:200]
    if head.startswith(b"<?xml") and b"encoding=" in head and b"UTF-8" not in head.upper():
        raise Unsupported("not UTF-8")
    if b"!" in payload and b"<!" in payload:  # "!" alone is a fast memchr; it is rare in vim XML
        raise Unsupported("CDATA section, comment or document type")
    for marker in _RESPONSES:
        at = payload.find(marker, 0, 4096)
        if at >= 0:
            return at + len(marker)
    raise Unsupported("no unprefixed RetrievePropertiesEx response (a fault?)")


@dataclass(frozen=True, slots=True)
class Tag:
    """A leaf element's name, ready for ``leaf``: its start tag and a pattern for the plain case."""

    opener: bytes  # b"<name"
    plain: re.Pattern[bytes]


def tag(name: bytes) -> Tag:
    """``<name>text</name>`` is read by one regex search; anything else by the general path."""
    quoted = re.escape(name)
    return Tag(b"<" + name, re.compile(b"<" + quoted + b"(?:>([^<&]*)</" + quoted + b">|[ \t\r\n/>])"))


def leaf(buf: bytes, name: Tag, start: int, end: int) -> str | None:
    """Text of the first leaf element called ``name`` whose start tag is in ``buf[start:end]``.

    The common ``<name>text</name>`` is one regex search; a start tag with attributes, a
    self-closing one, entities or element content go through ``find``/``text`` from there.
    """
    match = name.plain.search(buf, start, end)
    if match is None:
        return None
    raw: bytes | None = match.group(1)
    if raw is not None:
        return raw.decode()
    at, after = match.start(), match.start() + len(name.opener)
    if buf[after] == 0x3E:  # ">": plain start tag, but entities or element content
        stop = buf.find(b"<", after, end)
        if stop < 0 or buf[stop + 1] != 0x2F:  # "</": a leaf holds text only
            raise Unsupported(f"{name.opener.decode()}> is not a leaf")
        raw = buf[after + 1 : stop]
        return html.unescape(raw.decode()) if b"&" in raw else raw.decode()
    span = find(buf, name.opener[1:], at, end)
    return None if span is None else text(buf, span)


_OBJECT = b"<objects><obj"
_PROPERTY = b"<propSet><name>"


def _object(
    part: bytes, table: Mapping[bytes, tuple[str, Decoder]], memo: dict[bytes, tuple[str, Any]]
) -> ObjectContent:
    """One ``<objects>`` element without its end tag.

    ``memo`` holds the (name, value) of every ``propSet`` already decoded in this answer, by
    its bytes: a fleet repeats most values (builds, vendors, adapters, NIC drivers) host after
    host, and a repeated ``propSet`` is one dict lookup instead of a decode (decoders are pure
    and return immutable values, so hosts may share them).
    """
    ref_end = part.find(b"</obj>")
    gt = part.find(b">", len(_OBJECT))
    if ref_end < 0 or gt < 0 or gt > ref_end:
        raise Unsupported("unterminated <obj>")
    ref = (len(b"<objects>"), gt + 1, ref_end, ref_end + 6)
    props: dict[str, Any] = {}
    pieces = part[ref_end + 6 :].split(b"</propSet>")
    for piece in pieces[:-1]:
        known = memo.get(piece)
        if known is not None:
            props[known[0]] = known[1]
            continue
        head, _, val = piece.partition(b"</name>")
        entry = table.get(head)  # keyed by b"<propSet><name>" + name: a spaced layout misses
        if entry is None:
            raise Unsupported(f"no decoder for {head!r} or an unexpected layout")
        name, decoder = entry
        value: Any = None
        if val:
            tag, _, rest = val.partition(b">")
            if tag[:4] != b"<val" or (len(tag) > 4 and tag[4] not in _NAME_END):
                raise Unsupported("a propSet holds something other than a val")
            if not rest and tag[-1] == 0x2F:  # <val .../>
                value = decoder(val, (0, len(val), len(val), len(val)))
            elif rest[-6:] != b"</val>":
                raise Unsupported("<val> without its end tag")
            elif decoder is text and b"<" not in rest[:-6] and b"&" not in rest:
                value = rest[:-6].decode()  # most values: plain text, read here
            else:
                value = decoder(val, (0, len(tag) + 1, len(val) - 6, len(val)))
        props[name] = value
        memo[piece] = (name, value)
    if pieces[-1] and not pieces[-1].startswith(b"<missingSet>"):
        raise Unsupported("unexpected content in <objects>")
    return ObjectContent(MoRef(attribute(part, ref, b' type="') or "", text(part, ref)), props)


def scan_retrieve(payload: bytes, decoders: Mapping[str, Decoder]) -> RetrievePage:
    """A RetrievePropertiesEx / ContinueRetrievePropertiesEx answer, each value through its decoder.

    Every property name must have a decoder (``Unsupported`` otherwise): values come out
    exactly as the decoders make them, with None for a property without a ``val``. Decoders
    must be pure and return immutable values: a ``propSet`` repeated byte for byte is decoded
    once per answer and its value shared (see ``_object``). The answer
    is split at the end tags of ``objects`` and ``propSet`` (which never nest) and every part
    must then start with the literal unspaced start tag, so a spaced or unknown layout raises
    ``Unsupported`` instead of losing an object. Decoders get spans into these parts.
    """
    start = _check(payload)
    returnval = find(payload, b"returnval", start, len(payload))
    if returnval is None:
        return RetrievePage(objects=(), token=None)
    table = {_PROPERTY + name.encode(): (name, decoder) for name, decoder in decoders.items()}
    parts = payload[returnval[1] : returnval[2]].split(b"</objects>")
    token = None
    head = parts[0]
    if head.startswith(b"<token>"):  # the token comes first in a RetrieveResult
        span = find(head, b"token", 0, len(head))
        token = None if span is None else text(head, span)
        parts[0] = head[span[3] :] if span else head
    tail = parts.pop()
    if tail.startswith(b"<token>"):
        span = find(tail, b"token", 0, len(tail))
        token, tail = (None, tail) if span is None else (text(tail, span), tail[span[3] :])
    if tail:
        raise Unsupported("unexpected content in <returnval>")
    objects = []
    memo: dict[bytes, tuple[str, Any]] = {}  # for this answer only: dropped when it returns
    for part in parts:
        if not part.startswith(_OBJECT):
            raise Unsupported("unexpected content in <returnval>")
        objects.append(_object(part, table, memo))
    return RetrievePage(objects=tuple(objects), token=token)
