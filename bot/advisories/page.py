"""An advisory page (HTML, the published VMSA structure) → an ``Advisory`` with its fixed versions.

The structure: header fields (Advisory ID, Severity, Issue Date, Updated On, CVE(s), Synopsis), one
section per CVE (a heading naming the CVE, then Description with the CVSSv3 score and vector, Known
Attack Vectors, Resolution, Workarounds), a **response matrix** table per section or one at the end
(``Product | Version | Running On | CVE Identifier | CVSSv3 | Severity | Fixed Version | Workarounds |
Additional Documentation``), a second matrix for products that deploy ESXi (VCF, Telco Cloud), and a
change log (``1.1  2025-03-05  …``). Only ESXi rows become ``LineFix``es: they are what hosts run.

Bad input gives warnings and whatever could be read: no matrix, an unreadable fixed version, a
truncated or huge page (read up to ``MAX_BYTES``) never raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from bot.advisories.list_api import ADVISORY_ID, CVE_ID
from bot.advisories.model import Advisory, Cve, FixState, LineFix, exposures_in
from bot.advisories.page_html import Cell, Table, flatten
from bot.advisories.versions import line_of, resolve
from bot.builds import BuildCatalog

MAX_BYTES = 4 * 1024 * 1024  # real advisory pages are ~100 KB
_FIELD = re.compile(
    r"^(Advisory ID|Severity|Issue Date|Updated On|CVE\(s\)|CVEs?|Synopsis|CVSSv3 Range|Version)\s*:\s*(.*)$",
    re.IGNORECASE,
)
_SCORE = re.compile(
    r"CVSSv3 base score of\s*(\d{1,2}(?:\.\d)?)|CVSSv?3(?:\.1)?\s*(?:score)?\s*:?\s*(\d{1,2}\.\d)", re.I
)
_VECTOR = re.compile(r"CVSS:3\.[01]/[A-Z:/]+")
_CHANGE = re.compile(r"^(?:Version\s*)?(\d+\.\d+(?:\.\d+)?)\s*[:\-–]?\s*(\d{4}-\d{2}-\d{2})")
_KB = re.compile(r"\bKB\s*#?\s*(\d{5,7})\b|knowledge\.broadcom\.com/\S+|kb\.vmware\.com/\S+", re.I)
_SECTION = re.compile(r"^\s*(?:\d+[a-z]?\.|[a-z]\.)\s+\S")
_ESXI_PRODUCT = re.compile(r"^\s*(?:VMware\s+)?ESXi?\b", re.I)


@dataclass(frozen=True, slots=True)
class PageResult:
    advisory: Advisory | None
    warnings: tuple[str, ...] = ()


def _header(cells: list[Cell]) -> dict[str, int] | None:
    names = [c.text.strip().lower() for c in cells]
    if not any("fixed version" in n for n in names) or not any("product" in n for n in names):
        return None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        for key, words in (
            ("product", ("product",)),
            ("version", ("version",)),
            ("cve", ("cve",)),
            ("cvss", ("cvss",)),
            ("fixed", ("fixed version",)),
            ("workaround", ("workaround",)),
        ):
            if (
                key not in columns
                and any(w in name for w in words)
                and not (key == "version" and "fixed" in name)
            ):
                columns[key] = index
    return columns if {"product", "fixed"} <= columns.keys() else None


def _cell(row: list[Cell], columns: dict[str, int], key: str) -> Cell:
    index = columns.get(key)
    return row[index] if index is not None and index < len(row) else Cell()


def _workaround(cell: Cell) -> tuple[str | None, str | None]:
    text = cell.text.strip()
    if not text or text.lower() in ("none", "n/a", "-"):
        return None, None
    kb = next((link for link in cell.links if _KB.search(link) or "kb" in link.lower()), None)
    if kb is None and (m := _KB.search(text)):
        kb = m.group(0)
    return text, kb


class _Reader:
    def __init__(self, catalog: BuildCatalog) -> None:
        self.catalog = catalog
        self.fields: dict[str, str] = {}
        self.cves: dict[str, Cve] = {}
        self.sections: dict[str, list[str]] = {}
        self.lines: list[LineFix] = []
        self.products: list[str] = []
        self.workaround: str | None = None
        self.cell_workaround: str | None = None
        self.kb: str | None = None
        self.revisions: list[str] = []
        self.matrices = 0
        self.warnings: list[str] = []

    def text(self, block: str, current: list[str] | None) -> list[str] | None:
        if m := _FIELD.match(block):
            self.fields.setdefault(m.group(1).lower(), m.group(2).strip())
            return current
        if m := _CHANGE.match(block):
            self.revisions.append(m.group(1))
            return current
        named = [c.upper() for c in CVE_ID.findall(block)]
        if named and len(block) < 300 and _SECTION.match(block):
            section: list[str] = [block]
            for cve in dict.fromkeys(named):
                self.sections.setdefault(cve, section)
            return section
        if re.match(r"^\s*\d+\.\s+(References|Change Log|Contact|Notes)", block, re.I):
            return None
        if current is not None:
            current.append(block)
        return current

    def table(self, table: Table, all_cves: list[str]) -> None:
        columns: dict[str, int] | None = None
        for row in table.rows:
            if columns is None:
                columns = _header(row)
                continue
            self.row(row, columns, all_cves)
        if columns is not None:
            self.matrices += 1

    def row(self, row: list[Cell], columns: dict[str, int], all_cves: list[str]) -> None:
        product = _cell(row, columns, "product").text
        if not product:
            return
        if product not in self.products:
            self.products.append(product)
        if not _ESXI_PRODUCT.match(product):
            return  # VCF / Telco Cloud rows: hosts run ESXi builds, judged by the ESXi rows
        version_text = _cell(row, columns, "version").text
        line = line_of(version_text)
        if line is None:
            self.warnings.append(f"matrix row {product!r}: no product line in {version_text!r}")
            return
        cves = tuple(dict.fromkeys(c.upper() for c in CVE_ID.findall(_cell(row, columns, "cve").text)))
        fixed_text = _cell(row, columns, "fixed").text
        fixes = tuple(resolve(fixed_text, self.catalog))
        if not fixes:
            self.warnings.append(f"ESXi {line}: empty Fixed Version cell")
        for fix in fixes:
            if fix.state is FixState.UNKNOWN:
                self.warnings.append(f"ESXi {line}: {fix.reason}")
        workaround, kb = _workaround(_cell(row, columns, "workaround"))
        if workaround and self.cell_workaround is None:
            self.cell_workaround = workaround  # the section's own sentence is preferred (``finish``)
        self.kb = self.kb or kb
        score = re.search(r"\d{1,2}\.\d", _cell(row, columns, "cvss").text)
        for cve in cves:
            known = self.cves.get(cve)
            if score and (known is None or known.cvss is None):
                self.cves[cve] = replace(known or Cve(cve), cvss=float(score.group(0)))
        self.lines.append(LineFix(line, cves or tuple(all_cves), fixes, workaround))

    def finish(self, all_cves: list[str]) -> None:
        for cve in all_cves:
            section = self.sections.get(cve, [])
            text = " ".join(section[1:])
            score = _SCORE.search(text)
            vector = _VECTOR.search(text)
            description = next(
                (
                    b.split(":", 1)[1].strip()
                    for b in section
                    if b.lower().startswith("description:") and len(b) > len("description:") + 2
                ),
                next((b for b in section[1:] if not b.endswith(":")), ""),
            )
            known = self.cves.get(cve) or Cve(cve)
            title = re.sub(r"^\s*(?:\d+[a-z]?\.|[a-z]\.)\s*", "", section[0]) if section else ""
            self.cves[cve] = Cve(
                cve,
                float(score.group(1) or score.group(2)) if score else known.cvss,
                vector.group(0) if vector else known.vector,
                title[:200],
                description[:2000],
            )
            for block in section:
                if block.lower().startswith("workarounds:") and self.workaround is None:
                    said = block.split(":", 1)[1].strip()
                    if said and not said.lower().startswith("none"):
                        self.workaround = said[:500]
                        if self.kb is None and (m := _KB.search(said)):
                            self.kb = m.group(0)
        self.workaround = self.workaround or self.cell_workaround


def _date(text: str | None) -> date | None:
    m = re.search(r"\d{4}-\d{2}-\d{2}", text or "")
    try:
        return date.fromisoformat(m.group(0)) if m else None
    except ValueError:
        return None


def parse_page(body: bytes, *, url: str, catalog: BuildCatalog) -> PageResult:
    """One advisory page; ``advisory`` is None only when the page names no VMSA id."""
    warnings: list[str] = []
    if len(body) > MAX_BYTES:
        warnings.append(f"page of {len(body)} bytes: read the first {MAX_BYTES} only")
        body = body[:MAX_BYTES]
    items, broken = flatten(body.decode("utf-8", errors="replace"))
    if broken:
        warnings.append(broken)
    texts = [i for i in items if isinstance(i, str)]
    reader = _Reader(catalog)
    current: list[str] | None = None
    for item in items:
        if isinstance(item, str):
            current = reader.text(item, current)
    advisory_id = ADVISORY_ID.search(reader.fields.get("advisory id", "")) or next(
        (m for t in texts if (m := ADVISORY_ID.search(t))), None
    )
    if advisory_id is None:
        return PageResult(None, (*warnings, "no VMSA advisory id on the page"))
    header_cves = CVE_ID.findall(reader.fields.get("cve(s)", "") or reader.fields.get("cves", ""))
    all_cves = list(
        dict.fromkeys(c.upper() for c in header_cves or [c for t in texts for c in CVE_ID.findall(t)])
    )
    for item in items:
        if isinstance(item, Table):
            reader.table(item, all_cves)
    reader.finish(all_cves)
    warnings.extend(reader.warnings)
    if reader.matrices == 0:
        warnings.append(
            "no response matrix (a table with Product and Fixed Version columns): no fixed versions"
        )
    elif not reader.lines:
        warnings.append("the response matrix has no ESXi rows")
    synopsis = reader.fields.get("synopsis", "")
    body_text = " ".join([synopsis, *(c.title + " " + c.text for c in reader.cves.values())])
    exposures = exposures_in(body_text)
    severity = reader.fields.get("severity", "").strip().lower() or None
    updated = _date(reader.fields.get("updated on")) or _date(reader.fields.get("issue date"))
    advisory = Advisory(
        id=f"VMSA-{advisory_id.group(1)}-{advisory_id.group(2)}",
        title=synopsis,
        severity=severity.split()[0] if severity else None,
        published=_date(reader.fields.get("issue date")),
        updated=updated.isoformat() if updated else None,
        revision=max(reader.revisions, key=_revision_key) if reader.revisions else None,
        cves=tuple(reader.cves[c] for c in all_cves if c in reader.cves),
        lines=tuple(reader.lines),
        workaround=reader.workaround,
        workaround_kb=reader.kb,
        url=url if url.startswith(("http://", "https://")) else None,
        products=tuple(reader.products),
        exposures=exposures,
    )
    return PageResult(advisory, tuple(warnings))


def _revision_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))
