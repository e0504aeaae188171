"""The advisory pieces of the command line: ``advisories parse`` and ``advisories match``.

Each function takes parsed arguments and returns ``(text, exit_code)``; ``bot/runtime/cli.py`` prints
it. A document is recognised by its content: JSON with ``data.list`` is an advisory-list response,
with ``cveMetadata`` a CVE record, with ``vulnerabilities`` the KEV catalog; anything else is read
as an advisory page.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.advisories.list_api import parse_list
from bot.advisories.matching import match_all
from bot.advisories.model import Advisory, KevEntry, advisory_to_dict, merge
from bot.advisories.page import parse_page
from bot.advisories.poller import AdvisoryPoller
from bot.advisories.records import cve_from_doc, is_cve_record, parse_kev
from bot.builds import BuildCatalog
from bot.inventory.static_file import InventoryError, build_lookup, load_inventory
from bot.releases.sources.fetch import Fetcher, FetchError

MAX_FILE_BYTES = 64 * 1024 * 1024  # read no more of a file; the parsers cap what they read further


async def read_target(target: str) -> tuple[bytes, str]:
    """A file path or an http(s) URL → (bytes, URL); raises OSError / FetchError with a clear message."""
    if target.startswith(("http://", "https://")):
        fetcher = Fetcher.create()
        try:
            return (await fetcher.get(target)).body, target
        finally:
            await fetcher.close()

    def read() -> tuple[bytes, str]:
        path = Path(target)
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES), path.resolve().as_uri()

    return await asyncio.to_thread(read)


def parse_document(body: bytes, *, url: str, catalog: BuildCatalog) -> tuple[list[Advisory], list[str]]:
    """Advisories in one document, and warnings; never raises."""
    stripped = body.lstrip()[:1]
    if stripped in (b"{", b"["):
        try:
            doc: Any = json.loads(body.decode("utf-8", errors="replace"))
        except (json.JSONDecodeError, RecursionError) as exc:
            return [], [f"not JSON: {exc}"]
        if is_cve_record(doc):
            record = cve_from_doc(doc, catalog=catalog)
            return ([record.advisory] if record.advisory else []), list(record.warnings)
        if isinstance(doc, dict) and "vulnerabilities" in doc:
            return [], ["a KEV catalog, not an advisory: pass it with --kev"]
        listed = parse_list(body)
        return [r.advisory for r in listed.rows], list(listed.warnings)
    page = parse_page(body, url=url, catalog=catalog)
    return ([page.advisory] if page.advisory else []), list(page.warnings)


async def advisories_parse(target: str, *, as_json: bool = False) -> tuple[str, int]:
    catalog = BuildCatalog.bundled()
    try:
        body, url = await read_target(target)
    except (OSError, FetchError) as exc:
        return f"cannot read {target}: {exc}", 2
    found, warnings = parse_document(body, url=url, catalog=catalog)
    if as_json:
        doc = {"advisories": [advisory_to_dict(a) for a in found], "warnings": warnings}
        return json.dumps(doc, indent=2, ensure_ascii=False), 0 if found else 1
    lines: list[str] = []
    for advisory in found:
        lines.append(
            f"{advisory.id} ({advisory.severity or '?'}, {advisory.published or '?'}): {advisory.title}"
        )
        lines += [
            f"  {c.id}  CVSSv3 {c.cvss if c.cvss is not None else '?'}  {c.title}" for c in advisory.cves
        ]
        for lf in advisory.lines:
            fixes = "; ".join(f.label() for f in lf.fixes) or "not given"
            lines.append(
                f"  ESXi {lf.line}: {fixes}" + (f"  (workaround: {lf.workaround})" if lf.workaround else "")
            )
        if advisory.workaround:
            lines.append(f"  workaround: {advisory.workaround}")
    lines += [f"warning: {w}" for w in warnings]
    return "\n".join(lines) or "nothing found", 0 if found else 1


async def advisories_match(
    targets: Sequence[str], inventory: str, *, kev_files: Sequence[str] = (), as_json: bool = False
) -> tuple[str, int]:
    catalog = BuildCatalog.bundled()
    try:
        hosts = load_inventory(inventory, build_lookup(catalog))
    except (InventoryError, OSError) as exc:
        return str(exc), 2
    by_id: dict[str, Advisory] = {}
    problems: list[str] = []
    for target in targets:
        try:
            body, url = await read_target(target)
        except (OSError, FetchError) as exc:
            return f"cannot read {target}: {exc}", 2
        found, warnings = parse_document(body, url=url, catalog=catalog)
        problems += [f"{target}: {w}" for w in warnings]
        record = body.lstrip()[:1] == b"{" and b'"cveMetadata"' in body
        for advisory in found:
            known = by_id.get(advisory.id)
            if known is None:
                by_id[advisory.id] = advisory
            else:  # a CVE record fills in what the page does not say; a page wins over what came before
                by_id[advisory.id] = merge(advisory, known) if record else merge(known, advisory)
    kev: dict[str, KevEntry] = {}
    for target in kev_files:
        try:
            result = parse_kev((await read_target(target))[0])
        except (OSError, FetchError) as exc:
            return f"cannot read {target}: {exc}", 2
        problems += [f"{target}: {w}" for w in result.warnings]
        kev.update({e.cve: e for e in result.entries})
    rows = [
        m.as_json() for result in match_all(by_id.values(), hosts, catalog, kev) for m in result.matches()
    ]
    code = 1 if not by_id else 0
    if as_json:
        for problem in problems:  # stdout stays one JSON document
            print(f"warning: {problem}", file=sys.stderr)
        return json.dumps(rows, indent=2, ensure_ascii=False), code
    lines = [
        f"{r['advisory']} {r['cve']} {r['host']}: {r['verdict']}"
        + (" [EXPLOITED]" if r["exploited"] else "")
        + f" — {'; '.join(r['reasons'])}"
        for r in rows
    ]
    return "\n".join([*(f"warning: {p}" for p in problems), *lines]), code


async def advisories_poll_once(poller: AdvisoryPoller) -> tuple[str, int]:
    """Poll every enabled advisory source once; print what is new and what failed."""
    lines: list[str] = []
    failed = 0
    for report in await poller.poll_all():
        if report.error:
            failed += 1
            lines.append(f"{report.source}: ERROR {report.error}")
        elif report.not_modified:
            lines.append(f"{report.source}: not modified")
        else:
            note = " (first poll: stored, not announced)" if report.primed else ""
            lines.append(
                f"{report.source}: {len(report.new)} new, {len(report.updated)} updated advisories"
                + (f", {len(report.kev_added)} CVEs newly in KEV" if report.kev_added else "")
                + note
            )
            lines += [f"  {a}" for a in (*report.new, *report.updated)]
        lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines) or "no advisory sources configured", 1 if failed else 0
