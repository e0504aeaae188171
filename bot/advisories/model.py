"""Security-advisory values: advisories, their CVEs, fixed versions per product line, KEV entries, verdicts.

An ``Advisory`` is what Broadcom publishes as ``VMSA-YYYY-NNNN``: CVEs with CVSS and text, and a
response matrix saying, per ESXi line, which build fixes them (or that no patch is planned, or that
one is pending) and what the workaround is. The list API, the advisory page and CVE records each know
part of it; ``merge`` combines them. Everything here is frozen and converts to and from plain JSON
(``to_dict``/``advisory_from_dict``) so the store keeps it as one document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any


class FixState(StrEnum):
    FIXED = "fixed"  # a build fixes it
    NO_PATCH = "no patch planned"
    PENDING = "pending"
    UNKNOWN = "unknown"  # a fixed-version string esxbot cannot place


class Verdict(StrEnum):
    VULNERABLE = "vulnerable"
    FIXED = "fixed"
    NOT_APPLICABLE = "not-applicable"
    UNKNOWN = "unknown"


class Exposure(StrEnum):
    """Host configuration an advisory's exposure depends on, when esxbot can see it."""

    ACTIVE_DIRECTORY = "active-directory"  # CVE-2024-37085: only AD-joined hosts
    USB_CONTROLLER = "usb-controller"  # VMSA-2024-0006: VMs with a USB controller


_EXPOSURE_RULES: tuple[tuple[re.Pattern[str], Exposure], ...] = (
    (re.compile(r"Active Directory|ESX Admins", re.I), Exposure.ACTIVE_DIRECTORY),
    (re.compile(r"USB controller|\bXHCI\b|\bUHCI\b", re.I), Exposure.USB_CONTROLLER),
)


def exposures_in(text: str) -> tuple[Exposure, ...]:
    """The host configurations a text says the exposure depends on (rules as data above)."""
    return tuple(e for pattern, e in _EXPOSURE_RULES if pattern.search(text))


@dataclass(frozen=True, slots=True)
class FixedVersion:
    """One "Fixed Version" cell entry placed on the build catalog (or not, with the reason)."""

    text: str
    state: FixState
    build: int | None = None
    version: str | None = None  # update line "8.0.3"
    name: str | None = None  # "ESXi 8.0 Update 3d"
    reason: str | None = None  # why it could not be placed

    def label(self) -> str:
        if self.state is FixState.FIXED and self.name and self.build:
            return f"{self.name} ({self.build})"
        return self.text if self.state is FixState.UNKNOWN else self.state.value


@dataclass(frozen=True, slots=True)
class LineFix:
    """One response-matrix row for ESXi: a product line, the CVEs it covers, how they are fixed."""

    line: str  # "8.0"
    cves: tuple[str, ...]
    fixes: tuple[FixedVersion, ...]
    workaround: str | None = None  # "None" in the matrix becomes None


@dataclass(frozen=True, slots=True)
class Cve:
    id: str  # "CVE-2025-22224"
    cvss: float | None = None
    vector: str | None = None
    title: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str  # "VMSA-2025-0004"
    title: str = ""
    severity: str | None = None  # "critical", "important", "moderate", "low"
    published: date | None = None
    updated: str | None = None  # as the source wrote it; compared, not computed with
    revision: str | None = None  # "1.1"
    cves: tuple[Cve, ...] = ()
    lines: tuple[LineFix, ...] = ()
    workaround: str | None = None
    workaround_kb: str | None = None  # a KB link or number
    url: str | None = None
    products: tuple[str, ...] = ()  # every product the response matrix names
    exposures: tuple[Exposure, ...] = ()

    @property
    def cve_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.cves)

    def cve(self, cve_id: str) -> Cve | None:
        return next((c for c in self.cves if c.id == cve_id), None)

    def digest(self) -> str:
        """A stable fingerprint of the content: equal digests mean nothing to tell."""
        text = json.dumps(advisory_to_dict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class KevEntry:
    """One CISA KEV row: the CVE is exploited in the wild."""

    cve: str
    date_added: date | None = None
    due_date: date | None = None
    ransomware: bool | None = None  # "Known" → True, "Unknown" → None
    name: str = ""

    def describe(self) -> str:
        parts = [f"KEV since {self.date_added}" if self.date_added else "in KEV"]
        if self.due_date:
            parts.append(f"due {self.due_date}")
        if self.ransomware:
            parts.append("used by ransomware")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CveMatch:
    """The verdict of one advisory CVE on one host, with sentences a person can check."""

    advisory: str
    cve: str
    host: str
    verdict: Verdict
    fixed_by: str | None
    exploited: bool
    reasons: tuple[str, ...]
    exposed: bool | None = None  # the host has the configuration the advisory depends on

    def as_json(self) -> dict[str, Any]:
        return {
            "advisory": self.advisory,
            "cve": self.cve,
            "host": self.host,
            "verdict": self.verdict.value,
            "fixed_by": self.fixed_by,
            "exploited": self.exploited,
            "reasons": list(self.reasons),
            "exposed": self.exposed,
        }


def _fixed_to_dict(fixed: FixedVersion) -> dict[str, Any]:
    return {
        "text": fixed.text,
        "state": fixed.state.value,
        "build": fixed.build,
        "version": fixed.version,
        "name": fixed.name,
        "reason": fixed.reason,
    }


def advisory_to_dict(advisory: Advisory) -> dict[str, Any]:
    """The stable JSON shape (store documents and ``advisories parse --json``)."""
    return {
        "id": advisory.id,
        "title": advisory.title,
        "severity": advisory.severity,
        "published": advisory.published.isoformat() if advisory.published else None,
        "updated": advisory.updated,
        "revision": advisory.revision,
        "cves": [
            {"id": c.id, "cvss": c.cvss, "vector": c.vector, "title": c.title, "text": c.text}
            for c in advisory.cves
        ],
        "lines": [
            {
                "line": lf.line,
                "cves": list(lf.cves),
                "fixes": [_fixed_to_dict(f) for f in lf.fixes],
                "workaround": lf.workaround,
            }
            for lf in advisory.lines
        ],
        "workaround": advisory.workaround,
        "workaround_kb": advisory.workaround_kb,
        "url": advisory.url,
        "products": list(advisory.products),
        "exposures": [e.value for e in advisory.exposures],
    }


def advisory_from_dict(data: Mapping[str, Any]) -> Advisory:
    """The inverse of ``advisory_to_dict`` (documents this esxbot wrote; raises on others)."""
    published = data.get("published")
    return Advisory(
        id=str(data["id"]),
        title=str(data.get("title") or ""),
        severity=data.get("severity"),
        published=date.fromisoformat(published) if published else None,
        updated=data.get("updated"),
        revision=data.get("revision"),
        cves=tuple(
            Cve(c["id"], c.get("cvss"), c.get("vector"), c.get("title") or "", c.get("text") or "")
            for c in data.get("cves", [])
        ),
        lines=tuple(
            LineFix(
                line=lf["line"],
                cves=tuple(lf.get("cves", [])),
                fixes=tuple(
                    FixedVersion(
                        f["text"],
                        FixState(f["state"]),
                        f.get("build"),
                        f.get("version"),
                        f.get("name"),
                        f.get("reason"),
                    )
                    for f in lf.get("fixes", [])
                ),
                workaround=lf.get("workaround"),
            )
            for lf in data.get("lines", [])
        ),
        workaround=data.get("workaround"),
        workaround_kb=data.get("workaround_kb"),
        url=data.get("url"),
        products=tuple(data.get("products", [])),
        exposures=tuple(Exposure(e) for e in data.get("exposures", [])),
    )


def _covers(new: LineFix, old: LineFix) -> bool:
    return bool(new.fixes) and new.line == old.line and set(old.cves) <= set(new.cves)


def merge(old: Advisory, new: Advisory) -> Advisory:
    """``new`` (a later or richer reading) over ``old``: known values are kept where ``new`` lacks them.

    To let a reading only fill gaps (a CVE record beside the advisory page), merge the other way round.

    Lines: rows of ``new`` replace the rows of ``old`` they cover (same line, CVEs a subset, a fixed
    version given); rows only ``old`` knows (a CVE record's fixed version, say) stay.
    """
    cves = {c.id: c for c in old.cves}
    for cve in new.cves:
        before = cves.get(cve.id)
        cves[cve.id] = (
            cve
            if before is None
            else Cve(
                cve.id,
                cve.cvss if cve.cvss is not None else before.cvss,
                cve.vector or before.vector,
                cve.title or before.title,
                cve.text or before.text,
            )
        )
    kept = [lf for lf in old.lines if not any(_covers(n, lf) for n in new.lines)]
    return replace(
        old,
        title=new.title or old.title,
        severity=new.severity or old.severity,
        published=new.published or old.published,
        updated=new.updated or old.updated,
        revision=new.revision or old.revision,
        cves=tuple(cves.values()),
        lines=tuple(dict.fromkeys([*kept, *new.lines])),
        workaround=new.workaround or old.workaround,
        workaround_kb=new.workaround_kb or old.workaround_kb,
        url=new.url or old.url,
        products=tuple(dict.fromkeys((*old.products, *new.products))),
        exposures=tuple(dict.fromkeys((*old.exposures, *new.exposures))),
    )


def changes(old: Advisory, new: Advisory) -> list[str]:
    """What a revision changed, in sentences for the "updated" message."""
    said: list[str] = []
    if new.revision and new.revision != old.revision:
        said.append(f"revision {old.revision or '?'} → {new.revision}")
    added = [c for c in new.cve_ids if c not in old.cve_ids]
    if added:
        said.append(f"new CVEs: {', '.join(added)}")
    before: dict[str, set[str]] = {}
    for lf in old.lines:
        before.setdefault(lf.line, set()).update(f.label() for f in lf.fixes)
    after: dict[str, set[str]] = {}
    for lf in new.lines:
        after.setdefault(lf.line, set()).update(f.label() for f in lf.fixes)
    for line, now in after.items():
        was = before.get(line, set())
        if now - was:
            fresh = ", ".join(sorted(now - was))
            if not was:
                said.append(f"ESXi {line}: fixed by {fresh} (not listed before)")
            elif was - now:
                said.append(f"ESXi {line}: fixed by {fresh} (was {', '.join(sorted(was - now))})")
            else:
                said.append(f"ESXi {line}: also fixed by {fresh}")
    if (new.workaround or "") != (old.workaround or ""):
        said.append(f"workaround: {new.workaround or 'none'}")
    if new.severity != old.severity and old.severity:
        said.append(f"severity {old.severity} → {new.severity}")
    return said
