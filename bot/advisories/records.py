"""CVE JSON 5 records and the CISA KEV catalog, read item by item.

A CVE record (cve.org, VMware as CNA) says per product which versions are affected and, in
``lessThan``, the fixed version (``{"version": "8.0", "lessThan": "ESXi80U2sb-23305545", "status":
"affected"}``); the CVSS is in ``metrics[].cvssV3_1``. It becomes an ``Advisory`` named after the VMSA
its references link to (the CVE id when none), so it can fill in fixed versions the page lacks.
Real records are dirty (``"8.0 "`` with a trailing space): values are trimmed, odd ones warned about.

The KEV catalog marks CVEs exploited in the wild; a row missing ``cveID`` is skipped with a warning,
missing dates are unknown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.advisories.list_api import ADVISORY_ID, CVE_ID
from bot.advisories.model import Advisory, Cve, KevEntry, LineFix
from bot.advisories.versions import line_of, resolve
from bot.builds import BuildCatalog

_ESXI = re.compile(r"^\s*(?:VMware\s+)?ESXi?\s*$", re.I)


@dataclass(frozen=True, slots=True)
class CveResult:
    advisory: Advisory | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KevResult:
    entries: tuple[KevEntry, ...]
    warnings: tuple[str, ...] = ()
    usable: bool = True


def _load(body: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(body.decode("utf-8", errors="replace")), None
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"not JSON: {exc}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _score(cna: dict[str, Any]) -> tuple[float | None, str | None]:
    for metric in _list(cna.get("metrics")):
        for key in ("cvssV3_1", "cvssV3_0", "cvssV4_0"):
            data = _dict(_dict(metric).get(key))
            score = data.get("baseScore")
            if isinstance(score, int | float) and not isinstance(score, bool):
                vector = data.get("vectorString")
                return float(score), vector if isinstance(vector, str) else None
    return None, None


def is_cve_record(doc: Any) -> bool:
    return isinstance(doc, dict) and _dict(doc.get("cveMetadata")).get("cveId") is not None


def parse_cve(body: bytes, *, catalog: BuildCatalog) -> CveResult:
    """One CVE JSON 5 record; never raises."""
    doc, error = _load(body)
    if error:
        return CveResult(None, (error,))
    return cve_from_doc(doc, catalog=catalog)


def cve_from_doc(doc: Any, *, catalog: BuildCatalog) -> CveResult:
    meta = _dict(_dict(doc).get("cveMetadata"))
    cve_id = str(meta.get("cveId") or "").strip().upper()
    if not CVE_ID.fullmatch(cve_id):
        return CveResult(None, (f"no cveMetadata.cveId in the record ({cve_id[:40]!r})",))
    cna = _dict(_dict(_dict(doc).get("containers")).get("cna"))
    warnings: list[str] = []
    lines: list[LineFix] = []
    for a_index, affected in enumerate(_list(cna.get("affected"))):
        product = str(_dict(affected).get("product") or "").strip()
        if not _ESXI.match(product):
            continue
        for v_index, version in enumerate(_list(_dict(affected).get("versions"))):
            where = f"affected[{a_index}].versions[{v_index}]"
            entry = _dict(version)
            if str(entry.get("status", "affected")).strip().lower() != "affected":
                continue
            raw = str(entry.get("version") or "")
            line = line_of(raw)
            fixed_text = str(entry.get("lessThan") or entry.get("lessThanOrEqual") or "").strip()
            if line is None:
                warnings.append(f"{where}: no product line in version {raw!r}")
                continue
            if raw != raw.strip():
                warnings.append(f"{where}: version {raw!r} trimmed")
            if not fixed_text:
                warnings.append(f"{where}: ESXi {line} affected with no fixed version (lessThan)")
                continue
            lines.append(LineFix(line, (cve_id,), tuple(resolve(fixed_text, catalog))))
    score, vector = _score(cna)
    text = next(
        (str(_dict(d).get("value")) for d in _list(cna.get("descriptions")) if _dict(d).get("value")), ""
    )
    refs = " ".join(
        str(_dict(r).get("url") or "") + " " + str(_dict(r).get("name") or "")
        for r in _list(cna.get("references"))
    )
    found = ADVISORY_ID.search(refs) or ADVISORY_ID.search(text)
    advisory_id = f"VMSA-{found.group(1)}-{found.group(2)}" if found else cve_id
    title = str(cna.get("title") or "").strip()
    advisory = Advisory(
        id=advisory_id,
        title=title if not found else "",
        cves=(Cve(cve_id, score, vector, title, text[:2000]),),
        lines=tuple(lines),
        products=("VMware ESXi",) if lines else (),
    )
    return CveResult(advisory, tuple(warnings))


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value).strip()[:10]) if value else None
    except ValueError:
        return None


def parse_kev(body: bytes) -> KevResult:
    """The KEV catalog JSON (or an excerpt of it); never raises."""
    doc, error = _load(body)
    if error:
        return KevResult((), (error,), usable=False)
    rows = _dict(doc).get("vulnerabilities")
    if not isinstance(rows, list):
        return KevResult((), ("no vulnerabilities list in the catalog",), usable=False)
    entries: list[KevEntry] = []
    warnings: list[str] = []
    for index, row in enumerate(rows):
        item = _dict(row)
        cve = str(item.get("cveID") or "").strip().upper()
        if not CVE_ID.fullmatch(cve):
            warnings.append(f"vulnerabilities[{index}]: no cveID, skipped")
            continue
        added = _day(item.get("dateAdded"))
        if added is None:
            warnings.append(f"vulnerabilities[{index}] ({cve}): no dateAdded")
        ransomware = str(item.get("knownRansomwareCampaignUse") or "").strip().lower()
        entries.append(
            KevEntry(
                cve,
                added,
                _day(item.get("dueDate")),
                True if ransomware == "known" else None,
                str(item.get("vulnerabilityName") or ""),
            )
        )
    return KevResult(tuple(entries), tuple(warnings))
