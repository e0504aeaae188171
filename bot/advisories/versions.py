"""Fixed-version strings of advisories and CVE records placed on the build catalog.

The response matrix and CVE records write fixed versions several ways: ``ESXi80U3d-24585383`` (8.0
Update 3d, build 24585383), ``ESXi80U2sb-23305545`` (an 8.0 U2 security build), ``ESXi70U3s-24585291``,
``ESXi 7.0 U3e``, ``6.7U3u``, a release name, a bare build number, VCF 9 versions
(``9.0.1.0101.24878356``), or words: no patch planned, patch pending. A string that names a build
carries it; one that only names a release needs the catalog; anything else is ``unknown`` with the
reason, never a guess.
"""

from __future__ import annotations

import re

from bot.advisories.model import FixedVersion, FixState
from bot.builds import BuildCatalog, KnownBuild

# ESXi80U3d-24585383, ESXi80U2sb-23305545, ESXi670-… is a patch id, not this shape
_COMPACT = re.compile(r"\bESXi?\s*(\d)(\d)\s*U(\d)([a-z]{0,3})\s*[-_ ]\s*(\d{7,8})\b", re.IGNORECASE)
# ESXi 7.0 U3e, 6.7U3u, ESXi 8.0 Update 3, 8.0 U2 (optionally followed by "-build" or "(build)")
_NAMED = re.compile(
    r"(?:\bESXi?\s*)?\b(\d)\.(\d)\s*(?:U|Update\s*)(\d)([a-z]{0,3})\b(?:\s*[-(]?\s*(?:build\s*)?(\d{7,8})\)?)?",
    re.IGNORECASE,
)
_GA = re.compile(
    r"(?:\bESXi?\s*)?\b(\d)\.(\d)(?:\s*GA|\.0)?\s*[-(]\s*(?:build\s*)?(\d{7,8})\)?", re.IGNORECASE
)
_VCF = re.compile(r"\b(\d{1,2})\.(\d)\.(\d)\.(\d{1,4})(?:\.(\d{7,8}))?\b")
_BUILD = re.compile(r"^\s*(?:build\s*)?(\d{7,8})\s*$", re.IGNORECASE)
_NO_PATCH = re.compile(
    r"no\s+(?:patch|fix|update)\s+(?:is\s+)?planned|will\s+not\s+be\s+(?:patched|fixed)", re.I
)
_PENDING = re.compile(r"\bpending\b|patch\s+pending|to\s+be\s+(?:released|announced)|\bTBD\b", re.I)
_NONE_WORDS = re.compile(r"^\s*(?:n/?a|none|-+|unaffected|not\s+affected)\s*$", re.I)


def _from_catalog(
    text: str, version: str, name: str, build: int | None, catalog: BuildCatalog
) -> FixedVersion:
    known: KnownBuild | None = catalog.lookup(build) if build else catalog.find(name)
    if build is not None:
        if known is not None and known.version != version:
            return FixedVersion(
                text,
                FixState.UNKNOWN,
                build,
                version,
                name,
                f"{text}: build {build} is {known.name} in the catalog, not {name}",
            )
        return FixedVersion(text, FixState.FIXED, build, version, known.name if known else name)
    if known is None and name.lower().endswith("sb"):
        known = catalog.find(name[:-2] + " (Security Only)") or catalog.find(name[:-2])
    if known is None:
        return FixedVersion(
            text, FixState.UNKNOWN, None, version, name, f"{name} is not in the build catalog"
        )
    return FixedVersion(text, FixState.FIXED, known.build, known.version, known.name)


def resolve(text: str, catalog: BuildCatalog) -> list[FixedVersion]:
    """Every fixed version one cell names (a cell may list several lines' builds)."""
    cell = " ".join(text.split())
    if not cell or _NONE_WORDS.match(cell):
        return []
    if _NO_PATCH.search(cell):
        return [FixedVersion(cell, FixState.NO_PATCH)]
    found: list[FixedVersion] = []
    spans: list[tuple[int, int]] = []
    for m in _COMPACT.finditer(cell):
        version = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
        name = f"ESXi {m.group(1)}.{m.group(2)} Update {m.group(3)}{m.group(4).lower()}"
        found.append(_from_catalog(m.group(0), version, name, int(m.group(5)), catalog))
        spans.append(m.span())
    for m in _NAMED.finditer(cell):
        if any(a <= m.start() < b for a, b in spans):
            continue
        version = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
        name = f"ESXi {m.group(1)}.{m.group(2)} Update {m.group(3)}{m.group(4).lower()}"
        build = int(m.group(5)) if m.group(5) else None
        found.append(_from_catalog(m.group(0), version, name, build, catalog))
        spans.append(m.span())
    if not found:
        for m in _GA.finditer(cell):
            version = f"{m.group(1)}.{m.group(2)}.0"
            found.append(
                _from_catalog(
                    m.group(0), version, f"ESXi {m.group(1)}.{m.group(2)}", int(m.group(3)), catalog
                )
            )
    if not found:
        for m in _VCF.finditer(cell):
            version = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
            if m.group(5):
                found.append(
                    FixedVersion(m.group(0), FixState.FIXED, int(m.group(5)), version, f"ESX {m.group(0)}")
                )
            else:
                known = catalog.find(m.group(0))
                found.append(
                    FixedVersion(m.group(0), FixState.FIXED, known.build, known.version, known.name)
                    if known
                    else FixedVersion(
                        m.group(0),
                        FixState.UNKNOWN,
                        None,
                        version,
                        None,
                        f"{m.group(0)} names no build and is not in the build catalog",
                    )
                )
    if not found and (bare := _BUILD.match(cell)):
        build = int(bare.group(1))
        known = catalog.lookup(build)
        found.append(
            FixedVersion(cell, FixState.FIXED, build, known.version, known.name)
            if known
            else FixedVersion(
                cell, FixState.UNKNOWN, build, None, None, f"build {build} is not in the build catalog"
            )
        )
    if not found and _PENDING.search(cell):
        return [FixedVersion(cell, FixState.PENDING)]
    if not found:
        return [FixedVersion(cell, FixState.UNKNOWN, reason=f"cannot read a fixed version in {cell[:80]!r}")]
    return found


def line_of(version_cell: str) -> str | None:
    """The product line a "Version" cell names: ``8.0``, ``8.x`` → ``8.0``, ``ESXi 7.0 U3`` → ``7.0``."""
    m = re.search(r"\b(\d{1,2})\.(\d|x)\b", version_cell, re.IGNORECASE)
    if m is None:
        return None
    return f"{m.group(1)}.{'0' if m.group(2).lower() == 'x' else m.group(2)}"
