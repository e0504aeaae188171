"""JSON build catalogs in the shape of the public virten.net ``esxiReleases.json`` → Releases.

Shape: ``{"data": {"esxiReleases": [ {build, minorRelease, updateRelease, releaseLevel,
releaseFullName, friendlyName, patchRelease, releaseDate, imageProfile, releaseNotes?}, ... ]}}`` (a
bare list is accepted too). Real copies carry dirt: trailing ``\\n``/``\\t``/spaces inside values, doubled
spaces, typos like ``EESXi-6.5.0-…``, a ``releaseFullName`` naming another build, order newest-first
but not strictly. Values are cleaned; a row that cannot give a build is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.builds import version_from_name
from bot.model import Release

log = logging.getLogger(__name__)

_BUILD_IN_NAME_RE = re.compile(r"build-(\d+)")
_VERSION_RE = re.compile(r"\b(\d\.\d\.\d)\b")


@dataclass(frozen=True, slots=True)
class CatalogResult:
    releases: tuple[Release, ...]
    warnings: tuple[str, ...] = ()


def clean_value(value: Any) -> str:
    """Strip whitespace (incl. embedded ``\\n``/``\\t``) and collapse runs of spaces."""
    if value is None:
        return ""
    return re.sub(r"\s+", " ", str(value)).strip()


def _profile(value: str) -> str:
    return re.sub(r"^E+SXi-", "ESXi-", value)


def _rows(document: Any) -> list[Any] | None:
    if isinstance(document, list):
        return document
    if isinstance(document, Mapping):
        data = document.get("data", document)
        if isinstance(data, Mapping):
            for key in ("esxiReleases", "releases"):
                if isinstance(data.get(key), list):
                    return list(data[key])
    return None


def parse_catalog(data: bytes | str, *, url: str | None = None) -> CatalogResult:
    """Parse a catalog document; never raises on bad input (returns warnings instead)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return CatalogResult((), (f"not JSON: {exc}",))
    rows = _rows(document)
    if rows is None:
        return CatalogResult((), ("no release list (data.esxiReleases) in the document",))
    releases: dict[int, Release] = {}
    warnings: list[str] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            warnings.append(f"row {index}: not an object, skipped")
            continue
        release, problem = _release(row, url)
        if problem:
            warnings.append(f"row {index}: {problem}")
        if release is None:
            continue
        if release.build in releases:
            warnings.append(f"row {index}: build {release.build} listed twice; kept the first")
            continue
        releases[release.build] = release
    for warning in warnings:
        log.info("catalog %s: %s", url or "<document>", warning)
    return CatalogResult(tuple(releases.values()), tuple(warnings))


def _release(row: Mapping[str, Any], url: str | None) -> tuple[Release | None, str | None]:
    values = {key: clean_value(value) for key, value in row.items()}
    build_text = values.get("build", "")
    if not build_text.isdigit():
        return None, f"build {build_text!r} is not a number, skipped"
    build = int(build_text)
    problem = None
    named = _BUILD_IN_NAME_RE.search(values.get("releaseFullName", ""))
    if named and int(named.group(1)) != build:
        problem = f"releaseFullName names build {named.group(1)}, row says {build}; kept {build}"
    level = values.get("releaseLevel", "")
    version_match = _VERSION_RE.search(level)
    line = values.get("minorRelease") or ""
    name = values.get("friendlyName") or values.get("updateRelease") or f"ESXi {line} build {build}"
    version = version_match.group(1) if version_match else version_from_name(name)
    if not re.fullmatch(r"\d\.\d", line):
        line = ".".join((version or "").split(".")[:2])
    if not line:
        return None, f"build {build}: no product line, skipped"
    day = None
    try:
        day = date.fromisoformat(values.get("releaseDate", "")[:10]) if values.get("releaseDate") else None
    except ValueError:
        problem = f"build {build}: release date {values.get('releaseDate')!r} unreadable"
    profiles = tuple(_profile(p) for p in values.get("imageProfile", "").split(" ") if p)
    patch = values.get("patchRelease", "")
    return (
        Release(
            line=line,
            name=name,
            build=build,
            release_date=day,
            version=version,
            notes_url=values.get("releaseNotes") or None,
            image_profiles=profiles,
            bulletins=(patch,) if patch else (),
        ),
        problem,
    )
