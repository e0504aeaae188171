"""Broadcom's security-advisory list API: the request body and the response, one row per advisory.

The API is ``POST https://support.broadcom.com/web/ecx/security-advisory/-/securityadvisory/getSecurityAdvisoryList``
(no auth, JSON body ``{"pageNumber": 0, "pageSize": 100, "searchVal": "", "segment": "VC", "sortInfo":
{"column": "publishedDate", "order": "desc"}}``; segment ``VC`` is VMware Cloud Foundation / vSphere).
A row names the advisory, its CVEs, severity, dates, the advisory page (``notificationUrl``) and the
workaround flag, but no fixed versions: those are on the page. Each row is read on its own; a bad row
is a warning, the others still count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.advisories.model import Advisory, Cve

ADVISORY_ID = re.compile(r"\bVMSA-(\d{4})-(\d{4})\b", re.IGNORECASE)
CVE_ID = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_ESXI = re.compile(r"\bESXi?\b|Cloud Foundation|\bVCF\b|vSphere", re.IGNORECASE)


def request_body(page: int, page_size: int, segment: str) -> dict[str, Any]:
    return {
        "pageNumber": page,
        "pageSize": page_size,
        "searchVal": "",
        "segment": segment,
        "sortInfo": {"column": "publishedDate", "order": "desc"},
    }


@dataclass(frozen=True, slots=True)
class ListRow:
    advisory: Advisory  # id, title, severity, CVEs, dates, url, workaround (no fixed versions)
    status: str | None
    concerns_esxi: bool  # the title or products name ESXi / vSphere / VCF: worth fetching the page


@dataclass(frozen=True, slots=True)
class ListPage:
    rows: tuple[ListRow, ...]
    last_page: int | None  # index of the last page, when the response says
    warnings: tuple[str, ...] = ()
    usable: bool = True  # False: not the list API's shape at all


def _published(text: Any) -> date | None:
    if not isinstance(text, str) or not text.strip():
        return None
    for fmt in ("%d %B %Y", "%d %b %Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _row(item: Any, index: int) -> ListRow | str:
    if not isinstance(item, dict):
        return f"row {index}: not an object"
    title = item.get("title")
    if not isinstance(title, str):
        return f"row {index}: no title"
    found = ADVISORY_ID.search(title) or ADVISORY_ID.search(str(item.get("documentId") or ""))
    if found is None:
        return f"row {index}: no VMSA id in {title[:80]!r}"
    cve_text = f"{item.get('affectedCve') or ''} {title}"
    cves = tuple(dict.fromkeys(c.upper() for c in CVE_ID.findall(cve_text)))
    workaround = item.get("workAround")
    workaround = workaround.strip() if isinstance(workaround, str) and workaround.strip() else None
    if workaround and workaround.lower() in ("none", "n/a", "no", "yes"):
        workaround = None  # a flag, not the workaround: that is on the advisory page
    severity = item.get("severity")
    url = item.get("notificationUrl")
    products = item.get("supportProducts")
    advisory = Advisory(
        id=f"VMSA-{found.group(1)}-{found.group(2)}",
        title=re.sub(r"^\s*VMSA-\d{4}-\d{4}\s*[:\-–]\s*", "", " ".join(title.split()), flags=re.I),
        severity=severity.strip().lower() if isinstance(severity, str) and severity.strip() else None,
        published=_published(item.get("published")),
        updated=str(item["updated"]) if item.get("updated") else None,
        cves=tuple(Cve(c) for c in cves),
        workaround=workaround,
        url=url if isinstance(url, str) and url.startswith(("http://", "https://")) else None,
    )
    concerns = bool(_ESXI.search(title) or (isinstance(products, str) and _ESXI.search(products)))
    status = item.get("status")
    return ListRow(advisory, status if isinstance(status, str) else None, concerns)


def parse_list(body: bytes) -> ListPage:
    """One response page; never raises."""
    try:
        doc = json.loads(body.decode("utf-8", errors="replace"))
    except (json.JSONDecodeError, RecursionError) as exc:
        return ListPage((), None, (f"not JSON: {exc}",), usable=False)
    data = doc.get("data") if isinstance(doc, dict) else None
    items = data.get("list") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return ListPage((), None, ("no data.list in the response",), usable=False)
    rows: list[ListRow] = []
    warnings: list[str] = []
    for index, item in enumerate(items):
        parsed = _row(item, index)
        if isinstance(parsed, str):
            warnings.append(parsed)
        else:
            rows.append(parsed)
    info = data.get("pageInfo") if isinstance(data, dict) else None
    last = info.get("lastPage") if isinstance(info, dict) else None
    usable_last = isinstance(last, int) and not isinstance(last, bool) and last >= 0
    return ListPage(tuple(rows), last if usable_last else None, tuple(warnings))
