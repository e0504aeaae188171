"""ESXi release notes (docs.vmware.com / Broadcom techdocs HTML, plain text, Japanese) → Release + Fixes.

The published structure: a header ``ESXi 7.0 Update 2c | 24 AUG 2021 | ISO Build 18426014``, Build
Details, bulletins and image profiles, then "Resolved Issues" grouped by component headings with
``PR nnnnnnn: title`` entries (colon optional, several PRs per entry possible) followed by their text,
then "Known Issues", which are never fixes. Bulletin tables may list "PRs Fixed"; PRs found only there
become fixes without a description. Anything unexpected yields fewer fixes and a warning, never an
exception.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date

from bot.builds import version_from_name
from bot.model import Fix, Release
from bot.releases.sources.doc_blocks import Block, html_blocks, looks_like_html, text_blocks

log = logging.getLogger(__name__)

_PR_LINE_RE = re.compile(
    r"^(?:PRs?|R)\s*#?\s*(\d{6,8}(?:\s*(?:,|/|&|、|and|および)\s*(?:PRs?\s*)?\d{6,8})*)\s*[:：|\-–—.]?\s*(.*)$",
    re.IGNORECASE,
)
_PR_NUMBER_RE = re.compile(r"\d{6,8}")
_PRS_FIXED_RE = re.compile(r"^(?:PRs? Fixed|修正された PR|修正済み PR)\s*\|?\s*(.*)$", re.IGNORECASE)
_CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b")
_NAME_RE = re.compile(
    r"\bESXi\s+(\d\.\d)(?:\.\d)?(?:\s*(?:Update|U)\s*(\d[a-z]?)\b|([a-z])\b|\s+(GA)\b)?",
    re.IGNORECASE,
)
_PATCH_ID_RE = re.compile(r"\bESXi(\d)(\d)0-(\d{9})\b")
# ESX 9 (VCF 9 unified versioning, KB 395110): "ESX 9.0.1.0", "ESX 9.0.1.0100"; never "Update"
_UNIFIED_NAME_RE = re.compile(r"\bESXi?\s+(9|[1-9]\d)\.(\d)\.(\d)(?:\.(\d{1,4}))?\b", re.IGNORECASE)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DMY_RE = re.compile(r"\b(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4})\b")
_MDY_RE = re.compile(r"\b([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),\s+(\d{4})\b")
_ISO_DATE_RE = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b")
_JA_DATE_RE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ISO_BUILD_RE = re.compile(r"ISO\s*(?:Build|ビルド)\s*[:：]?\s*(\d{7,8})", re.IGNORECASE)
_BUILD_RE = re.compile(r"(?:^|\|\s*|\b)(?:Build(?: Number)?|ビルド(?:番号)?)\s*[:：|]?\s*(\d{7,8})\b", re.I)
_DEPOT_RE = re.compile(r"VMware-ESXi-\d\.\d(?:\.\d)?\w*-(\d{7,8})-depot", re.IGNORECASE)
_PROFILE_RE = re.compile(r"\bE?ESXi-\d{1,2}\.\d[\w.]*?[-.]\d{7,11}s?-(?:standard|no-tools)\b")
_PROFILE_BUILD_RE = re.compile(r"[-.](\d{7,11})s?-(?:standard|no-tools)$")
_BULLETIN_RE = re.compile(
    r"\b(?:ESXi\d{2}U\d\w*-\d{7,8}|ESXi\d{3}-\d{9}-[A-Z]{2}|[A-Za-z][\w-]*_\d+\.\d[\w.-]*?\.\d{7,8})\b"
)
_RESOLVED_RE = re.compile(r"resolved issues|fixed issues|解決(?:した|された)問題|修正された問題", re.I)
_KNOWN_RE = re.compile(r"known issues|既知の問題", re.IGNORECASE)
_TOP_RE = re.compile(
    r"what'?s new|what.s in the release notes|before you begin|build details|patches contained|"
    r"image profiles?|product support notices|earlier releases|installation|upgrade notes|"
    r"internationali[sz]ation|compatibility|download|patch download|新機能|ビルドの詳細|"
    r"イメージ ?プロファイル|このリリースに含まれるパッチ|以前のリリース",
    re.IGNORECASE,
)
_COMPONENT_RE = re.compile(r"(?:issues?|問題)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NotesResult:
    """What one document yielded. ``release`` is None when neither a name nor a build was found."""

    release: Release | None
    fixes: tuple[Fix, ...]
    warnings: tuple[str, ...] = ()
    known_issue_prs: tuple[str, ...] = ()
    name: str | None = None
    build: int | None = None


@dataclass(slots=True)
class _Entry:
    prs: list[str]
    component: str | None
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _State:
    mode: str = "start"  # start | resolved | known | other
    section_level: int = 2
    component: str | None = None
    entry: _Entry | None = None
    entries: list[_Entry] = field(default_factory=list)
    listed: dict[str, str] = field(default_factory=dict)  # PR → bulletin that lists it
    bulletin: str | None = None
    known_prs: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    loose: list[_Entry] = field(default_factory=list)  # PR entries outside any section
    unnumbered: int = 0
    pending_title: str | None = None
    saw_resolved: bool = False


def decode(data: bytes, content_type: str | None = None) -> str:
    """Bytes to text: the charset of the Content-Type, else a <meta charset>, else UTF-8 (lenient)."""
    charset = None
    for source in (content_type or "", data[:2048].decode("ascii", "replace")):
        found = re.search(r"charset=[\"']?([\w-]+)", source, re.IGNORECASE)
        if found:
            charset = found.group(1)
            break
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def parse_notes(data: bytes | str, *, url: str | None = None, content_type: str | None = None) -> NotesResult:
    """Parse one release-notes document; never raises on bad input."""
    text = decode(data, content_type) if isinstance(data, bytes) else data
    is_html = "html" in (content_type or "") or looks_like_html(text)
    try:
        blocks = html_blocks(text) if is_html else text_blocks(text)
        return _parse_blocks(blocks, url)
    except Exception as exc:  # the contract is "warn, never crash" for any malformed document
        log.warning("release notes %s could not be parsed: %r", url or "<document>", exc)
        return NotesResult(None, (), (f"document could not be parsed: {exc!r}",))


def _classify(text: str) -> str | None:
    head = text.strip().rstrip(":：")
    if _RESOLVED_RE.search(head) and not _KNOWN_RE.search(head):
        return "resolved"
    if _KNOWN_RE.search(head):
        return "known"
    if _TOP_RE.search(head) and len(head) < 80:
        return "other"
    return None


def _close_entry(state: _State) -> None:
    if state.entry is not None:
        (state.entries if state.mode == "resolved" else state.loose).append(state.entry)
        state.entry = None


def _heading(state: _State, block: Block, level: int) -> None:
    kind = _classify(block.text)
    if kind in ("resolved", "known"):
        _close_entry(state)
        state.mode, state.section_level, state.component, state.bulletin = kind, level, None, None
        state.saw_resolved |= kind == "resolved"
        return
    if state.mode == "resolved" and (level > state.section_level or _is_component(block.text)):
        _close_entry(state)
        state.component = block.text
        state.bulletin = next(iter(_BULLETIN_RE.findall(block.text)), None)
        return
    if kind == "other" or state.mode == "resolved":
        _close_entry(state)
        state.mode, state.section_level = "other", level
    state.meta.append(block.text)


def _is_component(text: str) -> bool:
    return len(text) < 70 and bool(_COMPONENT_RE.search(text)) and not re.search(r"[.。]\s*\S", text)


def _pr_line(text: str) -> tuple[list[str], str] | None:
    found = _PR_LINE_RE.match(text.strip())
    if found is None:
        return None
    return _PR_NUMBER_RE.findall(found.group(1)), found.group(2).strip()


def _feed(state: _State, block: Block) -> None:
    parsed = _pr_line(block.text)
    level = block.level
    if level is not None and parsed is None:
        _heading(state, block, level)
        return
    if parsed is None and block.strong and _classify(block.text) is not None and len(block.text) < 60:
        _heading(state, block, 2)
        return
    listed = _PRS_FIXED_RE.match(block.text)
    if listed and state.mode == "resolved":
        for pr in _PR_NUMBER_RE.findall(listed.group(1)):
            state.listed.setdefault(pr, state.bulletin or state.component or "a bulletin")
        return
    if parsed is not None:
        prs, title = parsed
        if state.mode == "known":
            state.known_prs.extend(prs)
            return
        if state.mode == "other" and state.saw_resolved:
            state.meta.append(block.text)
            return
        _close_entry(state)
        state.entry = _Entry(prs, state.component, title)
        return
    if state.mode == "resolved" and state.entry is None and _is_component(block.text) and block.kind != "row":
        state.component = block.text
        return
    if state.mode == "resolved" and state.entry is not None and block.strong and _is_component(block.text):
        _close_entry(state)
        state.component = block.text
        return
    if state.entry is not None and state.mode != "known":
        if not state.entry.title:
            state.entry.title = block.text
        else:
            state.entry.lines.append(block.text)
        if state.mode == "resolved":
            return
    if state.mode == "resolved":
        _unnumbered(state, block)
        return
    if state.mode != "known":
        state.meta.append(block.text)


def _unnumbered(state: _State, block: Block) -> None:
    """Count resolved entries that have a bold title and "resolved in this release" but no PR."""
    if block.kind == "row":
        state.bulletin = next(iter(_BULLETIN_RE.findall(block.text)), state.bulletin)
    elif block.strong:
        state.pending_title = block.text
    elif state.pending_title and "resolved in this release" in block.text.lower():
        state.unnumbered += 1
        state.pending_title = None


def _fixes(entries: list[_Entry], listed: dict[str, str]) -> list[Fix]:
    fixes: dict[str, Fix] = {}
    for entry in entries:
        text = "\n".join(entry.lines)
        cves = tuple(dict.fromkeys(_CVE_RE.findall(f"{entry.title}\n{text}")))
        for pr in entry.prs:
            if pr not in fixes:
                fixes[pr] = Fix(pr=pr, title=entry.title, text=text, component=entry.component, cves=cves)
    for pr, bulletin in listed.items():
        if pr not in fixes:
            title = f"Listed as fixed by {bulletin} (no description)"
            fixes[pr] = Fix(pr=pr, title=title, component=bulletin)
    return list(fixes.values())


def _parse_blocks(blocks: list[Block], url: str | None) -> NotesResult:
    state = _State()
    for block in blocks:
        _feed(state, block)
    _close_entry(state)
    warnings: list[str] = []
    entries = state.entries
    if not state.saw_resolved:
        entries = state.loose
        if entries:
            warnings.append("no Resolved Issues section found; PR entries were taken from the whole document")
        else:
            warnings.append("no Resolved Issues section and no PR entries found")
    elif state.loose:
        warnings.append(f"{len(state.loose)} PR entries outside the Resolved Issues section were ignored")
    if state.unnumbered:
        warnings.append(f"{state.unnumbered} resolved issue(s) without a PR number were skipped")
    fixes = _fixes(entries, state.listed)
    if state.saw_resolved and not fixes:
        warnings.append("Resolved Issues section holds no PR entries in a known shape")
    for fix in fixes:
        if not fix.title:
            warnings.append(f"PR {fix.pr} has no title")
    meta = "\n".join(state.meta)
    name, line = _release_name(meta)
    build, iso_build = _builds(meta, name)
    release = None
    if name is None:
        warnings.append("release name not found")
    if build is None:
        warnings.append("build number not found")
    if name is not None and build is not None and line is not None:
        release = Release(
            line=line,
            name=name,
            build=build,
            release_date=_release_date(state.meta),
            iso_build=iso_build if iso_build != build else None,
            version=version_from_name(name),
            notes_url=url,
            image_profiles=tuple(dict.fromkeys(_PROFILE_RE.findall(meta))),
            bulletins=tuple(dict.fromkeys(_BULLETIN_RE.findall(meta))),
            fixes=tuple(fixes),
        )
    known = tuple(dict.fromkeys(state.known_prs))
    for warning in warnings:
        log.info("release notes %s: %s", url or "<document>", warning)
    return NotesResult(release, tuple(fixes), tuple(warnings), known, name, build)


def _release_name(meta: str) -> tuple[str | None, str | None]:
    unified = _UNIFIED_NAME_RE.search(meta)
    if unified is not None:
        major, minor, maint, patch = unified.groups()
        patch_id = "0" if patch is None or int(patch) == 0 else f"{int(patch):04d}"
        return f"ESX {major}.{minor}.{maint}.{patch_id}", f"{major}.{minor}"
    found = _NAME_RE.search(meta)
    if found is None:
        patch = _PATCH_ID_RE.search(meta)
        if patch is None:
            return None, None
        return patch.group(0), f"{patch.group(1)}.{patch.group(2)}"
    line, update, letter, ga = found.groups()
    if update:
        return f"ESXi {line} Update {update.lower()}", line
    if letter:
        return f"ESXi {line}{letter.lower()}", line
    return (f"ESXi {line} GA" if ga else f"ESXi {line}"), line


def _builds(meta: str, name: str | None) -> tuple[int | None, int | None]:
    iso = _ISO_BUILD_RE.search(meta)
    iso_build = int(iso.group(1)) if iso else None
    plain = [int(m.group(1)) for m in _BUILD_RE.finditer(meta) if not _is_iso(meta, m.start())]
    if plain:
        return plain[0], iso_build
    depot = _DEPOT_RE.search(meta)
    if depot:
        return int(depot.group(1)), iso_build
    if iso_build is not None:
        return iso_build, iso_build
    tag = _profile_tag(name)
    for profile in _PROFILE_RE.findall(meta):
        build = _PROFILE_BUILD_RE.search(profile)
        if tag and build and re.match(rf"E?ESXi-{re.escape(tag)}[-.]", profile):
            return int(build.group(1)), None
    return None, None


def _is_iso(meta: str, start: int) -> bool:
    return meta[max(0, start - 5) : start + 6].upper().replace(" ", "").find("ISO") >= 0


def _profile_tag(name: str | None) -> str | None:
    """``ESXi 7.0 Update 2c`` → ``7.0U2c`` (the tag inside image-profile names)."""
    if name is None:
        return None
    unified = re.match(r"ESX (\d+\.\d\.\d\.\d+)$", name)
    if unified is not None:
        return unified.group(1)
    found = re.match(r"ESXi (\d\.\d)(?: Update (\w+))?", name)
    if found is None:
        return None
    return f"{found.group(1)}U{found.group(2)}" if found.group(2) else found.group(1)


def _release_date(meta: list[str]) -> date | None:
    """Prefer the header's ``| 24 AUG 2021 |``, then a "release date" line, then the first date."""
    candidates = [line for line in meta if "|" in line] + [
        line for line in meta if re.search(r"release date|リリース日|発行日", line, re.I)
    ]
    for line in [*candidates, *meta]:
        if re.search(r"updated on|更新日", line, re.IGNORECASE):
            continue
        day = _first_date(line)
        if day is not None:
            return day
    return None


def _first_date(text: str) -> date | None:
    found: list[tuple[int, date]] = []
    for m in _DMY_RE.finditer(text):
        found.append((m.start(), _safe_date(m.group(3), _month(m.group(2)), m.group(1))))
    for m in _MDY_RE.finditer(text):
        found.append((m.start(), _safe_date(m.group(3), _month(m.group(1)), m.group(2))))
    for m in (*_ISO_DATE_RE.finditer(text), *_JA_DATE_RE.finditer(text)):
        found.append((m.start(), _safe_date(m.group(1), int(m.group(2)), m.group(3))))
    valid = sorted((pos, day) for pos, day in found if day != date.min)
    return valid[0][1] if valid else None


def _month(name: str) -> int:
    upper = name.upper()
    return _MONTHS.index(upper) + 1 if upper in _MONTHS else 0


def _safe_date(year: str, month: int, day: str) -> date:
    try:
        return date(int(year), month, int(day))
    except ValueError:
        return date.min
