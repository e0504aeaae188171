"""The ESXi online depot (``kind: depot``): the index vLCM and ``esxcli software sources`` read.

``vmw-depot-index.xml`` lists vendors (``<vendor>`` with ``<relativePath>`` and ``<indexfile>``); a
vendor index lists metadata bundles (``<metadata>`` with ``<url>``, ``<productId>``, ``<version>``);
each bundle is a zip whose ``vmware.xml`` holds ``<bulletin>`` entries (id, release date, severity,
category, summary, KB link) and whose image profiles (``<imageProfile>`` in ``vmware.xml`` or files
under ``profiles/``) name the builds: ``ESXi-7.0U2c-18426014-standard``, security-only
``ESXi-7.0U2sc-18295176-standard``, ``ESXi-9.0.1.0-24957456-standard``. Every image profile is a
release at the moment vLCM would see it.

Every level is a conditional GET (validators kept per URL), so an unchanged depot costs three 304s
and no unzip. Since 2025 Broadcom's depot URL carries a per-customer download token: the configured
URL holds ``{token}`` and the token comes from a secret reference; it never appears in a log line,
an error or a chat message. A local offline depot (a directory or ``file://`` URL, as air-gapped
sites keep) is read the same way, with the file's size and time as its validator.
Bad input (truncated zip, zip bomb, unknown elements, unparseable profile names) is skipped with a
warning; what could be read is kept.
"""

from __future__ import annotations

import asyncio
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from bot.model import Release
from bot.releases.sources.fetch import Fetcher, FetchError, FetchResult
from bot.store.release_records import ReleaseRepo

MAX_INDEX_BYTES = 2 * 1024 * 1024
MAX_ZIP_BYTES = 64 * 1024 * 1024  # VMware's ESXi 8.0 metadata bundle is a few MB
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024  # all members read from one bundle together
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_MEMBERS = 50_000

_PROFILE_RE = re.compile(
    r"^E?ESXi-(?P<ver>\d{1,2}\.\d(?:\.\d){0,2}(?:\.\d{1,4})?)(?P<tag>(?:U\d)?s?[a-z]?)"
    r"[-.](?P<build>\d{7,11})s?-(?P<flavor>standard|no-tools)$",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"(?:U(\d))?(s?)([a-z]?)", re.IGNORECASE)
_BUILD_IN_ID_RE = re.compile(r"(\d{7,11})(?!.*\d{7,11})")
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class DepotError(Exception):
    """The depot could not be read at all; the message never holds the download token."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One image profile name, understood."""

    name: str
    release_name: str
    line: str
    version: str
    build: int
    security_only: bool


@dataclass(frozen=True, slots=True)
class Bulletin:
    id: str
    release_date: date | None = None
    severity: str = ""
    category: str = ""
    summary: str = ""
    kb_url: str | None = None


@dataclass(frozen=True, slots=True)
class DepotPoll:
    releases: tuple[Release, ...] = ()
    warnings: tuple[str, ...] = ()
    not_modified: bool = False  # every level answered "unchanged": nothing was parsed


@dataclass(slots=True)
class _Cache:
    """What an unchanged index or vendor index (304) still means: its children's URLs."""

    children: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse_profile_name(name: str) -> Profile | None:
    """``ESXi-8.0U2sb-23305545-standard`` → 8.0 U2b security-only build 23305545; None if unknown."""
    found = _PROFILE_RE.match(name.strip())
    if found is None:
        return None
    tag = _TAG_RE.fullmatch(found.group("tag"))
    if tag is None:
        return None
    update, security, letter = tag.group(1), bool(tag.group(2)), tag.group(3).lower()
    parts = found.group("ver").split(".")
    major, minor = int(parts[0]), int(parts[1])
    line = f"{major}.{minor}"
    if major >= 9:
        maint = parts[2] if len(parts) > 2 else "0"
        patch = parts[3] if len(parts) > 3 else "0"
        patch_id = "0" if int(patch) == 0 else f"{int(patch):04d}"
        release_name, version = f"ESX {line}.{maint}.{patch_id}", f"{line}.{maint}"
    else:
        upd = update or (parts[2] if len(parts) > 2 else "0")
        if update:
            release_name = f"ESXi {line} Update {update}{letter}"
        else:
            release_name = f"ESXi {line}{letter}" if letter else f"ESXi {line} GA"
        version = f"{line}.{upd}"
    if security:
        release_name += " (Security Only)"
    return Profile(name.strip(), release_name, line, version, int(found.group("build")), security)


def _text(element: ET.Element, *names: str) -> str:
    for name in names:
        child = element.find(name)
        if child is not None and child.text and child.text.strip():
            return child.text.strip()
    return ""


def _date(text: str) -> date | None:
    found = _DATE_RE.search(text)
    if found is None:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


def _xml(data: bytes, what: str, warnings: list[str]) -> ET.Element | None:
    try:
        return ET.fromstring(data)  # noqa: S314 - see the import: expat bounds entity expansion
    except ET.ParseError as exc:
        warnings.append(f"{what}: not XML ({exc})")
        return None


def vendor_index_urls(data: bytes, index_url: str, warnings: list[str]) -> tuple[str, ...]:
    root = _xml(data, "depot index", warnings)
    if root is None:
        return ()
    urls = []
    for vendor in root.iter("vendor"):
        indexfile = _text(vendor, "indexfile")
        if not indexfile:
            warnings.append("depot index: a vendor without <indexfile> skipped")
            continue
        relative = _text(vendor, "relativePath")
        path = indexfile if not relative or indexfile.startswith(relative) else relative + indexfile
        urls.append(urljoin(index_url, path))
    if not urls:
        warnings.append("depot index lists no vendor index")
    return tuple(dict.fromkeys(urls))


def metadata_urls(data: bytes, vendor_url: str, warnings: list[str]) -> tuple[str, ...]:
    root = _xml(data, "vendor index", warnings)
    if root is None:
        return ()
    urls = []
    for metadata in root.iter("metadata"):
        url = _text(metadata, "url")
        if url:
            urls.append(urljoin(vendor_url, url))
    if not urls:
        warnings.append("vendor index lists no metadata bundle")
    return tuple(dict.fromkeys(urls))


def read_bundle(data: bytes, url: str) -> tuple[list[Profile], list[Bulletin], list[str]]:
    """One metadata zip → its image profiles and bulletins; bounded in what it unpacks."""
    warnings: list[str] = []
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data))
        members = bundle.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [], [], [f"{url}: not a readable zip ({exc})"]
    if len(members) > MAX_MEMBERS:
        return [], [], [f"{url}: {len(members)} members, more than {MAX_MEMBERS}: skipped"]
    wanted = [m for m in members if m.filename.endswith(".xml") and _relevant(m.filename)]
    total = sum(m.file_size for m in wanted)
    if total > MAX_UNZIPPED_BYTES or any(m.file_size > MAX_MEMBER_BYTES for m in wanted):
        return [], [], [f"{url}: unpacks to {total} bytes, more than allowed: skipped"]
    profiles: dict[str, Profile] = {}
    bulletins: list[Bulletin] = []
    for member in wanted:
        try:
            with bundle.open(member) as handle:
                raw = handle.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            warnings.append(f"{url}: {member.filename}: unreadable ({exc})")
            continue
        if len(raw) > MAX_MEMBER_BYTES:
            warnings.append(f"{url}: {member.filename}: larger than it declared: skipped")
            continue
        root = _xml(raw, f"{url}: {member.filename}", warnings)
        if root is None:
            continue
        for element in _profiles_in(root):
            name = _text(element, "name")
            profile = parse_profile_name(name) if name else None
            if profile is None:
                warnings.append(f"{url}: image profile {name[:80]!r} not understood: skipped")
                continue
            profiles.setdefault(profile.name, profile)
        bulletins.extend(_bulletin(b) for b in root.iter("bulletin") if _text(b, "id"))
    return list(profiles.values()), bulletins, warnings


def _relevant(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base == "vmware.xml" or name.startswith(("profiles/", "bulletins/"))


def _profiles_in(root: ET.Element) -> Iterable[ET.Element]:
    return (element for element in root.iter() if element.tag.lower() == "imageprofile")


def _bulletin(element: ET.Element) -> Bulletin:
    kb = _text(element, "kbUrl", "kburl")
    return Bulletin(
        id=_text(element, "id"),
        release_date=_date(_text(element, "releaseDate", "releasedate")),
        severity=_text(element, "severity"),
        category=_text(element, "category"),
        summary=_text(element, "summary")[:300],
        kb_url=kb if kb.startswith(("http://", "https://")) else None,
    )


def releases_of(profiles: Iterable[Profile], bulletins: Iterable[Bulletin]) -> list[Release]:
    """One release per build: its image profiles, the date and KB link of the bulletin of that build."""
    by_build: dict[int, Bulletin] = {}
    for bulletin in bulletins:
        found = _BUILD_IN_ID_RE.search(bulletin.id)
        if found is not None:
            by_build.setdefault(int(found.group(1)), bulletin)
    grouped: dict[int, list[Profile]] = {}
    for profile in profiles:
        grouped.setdefault(profile.build, []).append(profile)
    releases = []
    for build, group in sorted(grouped.items()):
        first = group[0]
        carrier = by_build.get(build)
        releases.append(
            Release(
                line=first.line,
                name=first.release_name,
                build=build,
                release_date=carrier.release_date if carrier else None,
                version=first.version,
                notes_url=carrier.kb_url if carrier else None,
                image_profiles=tuple(sorted(p.name for p in group)),
                bulletins=(carrier.id,) if carrier else (),
            )
        )
    return releases


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


class DepotReader:
    """Reads one depot per poll, level by level, with conditional GETs kept per URL."""

    def __init__(self, fetcher: Fetcher, repo: ReleaseRepo) -> None:
        self._fetcher = fetcher
        self._repo = repo
        self._cache: dict[str, _Cache] = {}

    async def poll(self, source_name: str, url: str, token: str | None) -> DepotPoll:
        """``url`` may hold ``{token}``; raises ``DepotError`` only when the index itself fails."""
        real = url.replace("{token}", token or "")
        cache = self._cache.setdefault(source_name, _Cache())
        warnings: list[str] = []
        try:
            index = await self._get(source_name, real, MAX_INDEX_BYTES, cache)
        except FetchError as exc:
            raise DepotError(redact(f"depot index: {exc}", token)) from None
        changed = index is not None
        vendors = (
            vendor_index_urls(index.body, index.url, warnings)
            if index is not None
            else cache.children.get(real, ())
        )
        cache.children[real] = vendors
        profiles: list[Profile] = []
        bulletins: list[Bulletin] = []
        for vendor in vendors:
            try:
                answer = await self._get(source_name, vendor, MAX_INDEX_BYTES, cache)
                bundles = (
                    metadata_urls(answer.body, vendor, warnings)
                    if answer is not None
                    else cache.children.get(vendor, ())
                )
                cache.children[vendor] = bundles
                changed |= answer is not None
                for bundle_url in bundles:
                    body = await self._get(source_name, bundle_url, MAX_ZIP_BYTES, cache)
                    if body is None:
                        continue
                    changed = True
                    found, notes, problems = await asyncio.to_thread(
                        read_bundle, body.body, _shown(bundle_url)
                    )
                    profiles += found
                    bulletins += notes
                    warnings += problems
            except FetchError as exc:
                warnings.append(f"{_shown(vendor)}: {exc}")
        if not changed:
            return DepotPoll(not_modified=True)
        return DepotPoll(tuple(releases_of(profiles, bulletins)), tuple(redact(w, token) for w in warnings))

    async def _get(self, source_name: str, url: str, limit: int, cache: _Cache) -> FetchResult | None:
        """The body, or None when unchanged since the last poll (and its children are known)."""
        key = f"{source_name} @ {_shown(url)}"
        state = await self._repo.state(key)
        known = url in cache.children or url.endswith(".zip")
        etag = state.etag if known else None
        modified = state.last_modified if known else None
        if url.startswith(("file://", "/")):
            result = await asyncio.to_thread(_read_local, url, limit, etag)
        else:
            result = await self._fetcher.get(url, etag=etag, last_modified=modified, max_bytes=limit)
        if result.not_modified:
            return None
        await self._repo.save_state(replace(state, etag=result.etag, last_modified=result.last_modified))
        return result


def _shown(url: str) -> str:
    """A URL as it may be logged: the path's last two parts (a token lives near the front)."""
    parts = urlsplit(url)
    tail = "/".join(parts.path.rstrip("/").split("/")[-2:])
    return f"{parts.scheme}://{parts.hostname or ''}/…/{tail}" if parts.scheme != "file" else f"…/{tail}"


def _read_local(url: str, limit: int, etag: str | None) -> FetchResult:
    path = Path(url2pathname(urlsplit(url).path)) if url.startswith("file://") else Path(url)
    if path.is_dir():
        path = next((path / n for n in ("index.xml", "vmw-depot-index.xml") if (path / n).exists()), path)
    try:
        stat = path.stat()
        tag = f"{stat.st_mtime_ns}-{stat.st_size}"
        if etag == tag:
            return FetchResult(url, 304, etag=etag)
        if stat.st_size > limit:
            raise FetchError(f"{path.name}: {stat.st_size} bytes exceeds the {limit}-byte cap")
        return FetchResult(path.as_uri(), 200, path.read_bytes(), etag=tag)
    except OSError as exc:
        raise FetchError(f"{path.name}: {exc.strerror}") from None
