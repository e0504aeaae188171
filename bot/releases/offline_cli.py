"""The release pieces of the command line: ``notes parse``, ``match`` and ``sources poll --once``.

Each function takes already-parsed arguments and returns ``(text, exit_code)``; ``bot/runtime/cli.py`` prints
the text. JSON output is one document on stdout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.builds import BuildCatalog
from bot.inventory.static_file import InventoryError, load_inventory
from bot.model import Release
from bot.releases.match_rules import MatchRuleError, MatchRuleSet
from bot.releases.matching import match_release
from bot.releases.sources.fetch import Fetcher, FetchError
from bot.releases.sources.poller import SourcePoller
from bot.releases.sources.release_notes import NotesResult, parse_notes


def _release_dict(result: NotesResult) -> dict[str, Any]:
    release = result.release
    return {
        "name": result.name,
        "build": result.build,
        "line": release.line if release else None,
        "version": release.version if release else None,
        "release_date": release.release_date.isoformat() if release and release.release_date else None,
        "iso_build": release.iso_build if release else None,
        "notes_url": release.notes_url if release else None,
        "image_profiles": list(release.image_profiles) if release else [],
        "bulletins": list(release.bulletins) if release else [],
        "fixes": [
            {"pr": f.pr, "component": f.component, "title": f.title, "text": f.text, "cves": list(f.cves)}
            for f in result.fixes
        ],
        "known_issue_prs": list(result.known_issue_prs),
        "warnings": list(result.warnings),
    }


def _read_file(target: str) -> NotesResult:
    path = Path(target)
    return parse_notes(path.read_bytes(), url=path.resolve().as_uri())


async def read_notes(target: str, *, fetch_timeout: float = 30.0) -> NotesResult:
    """A file path or an http(s) URL; raises OSError / FetchError with a clear message."""
    if target.startswith(("http://", "https://")):
        fetcher = Fetcher.create(timeout=fetch_timeout)
        try:
            page = await fetcher.get(target)
        finally:
            await fetcher.close()
        return parse_notes(page.body, url=target, content_type=page.content_type)
    return await asyncio.to_thread(_read_file, target)


async def notes_parse(target: str, *, as_json: bool = False) -> tuple[str, int]:
    try:
        result = await read_notes(target)
    except (OSError, FetchError) as exc:
        return f"cannot read {target}: {exc}", 2
    if as_json:
        return json.dumps(_release_dict(result), indent=2, ensure_ascii=False), 0
    lines = [
        f"release:  {result.name or '?'}",
        f"build:    {result.build or '?'}",
        f"date:     {result.release.release_date if result.release else '?'}",
        f"fixes:    {len(result.fixes)}",
    ]
    if result.release and result.release.image_profiles:
        lines.append(f"profiles: {', '.join(result.release.image_profiles)}")
    lines += [f"  PR {f.pr}  [{f.component or '-'}]  {f.title}" for f in result.fixes]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines), 0 if result.release is not None else 1


async def match_notes(
    notes: Sequence[str], inventory: str, *, as_json: bool = False, rule_files: Sequence[str] = ()
) -> tuple[str, int]:
    catalog = BuildCatalog.bundled()

    def lookup(build: int) -> tuple[str | None, str | None] | None:
        known = catalog.lookup(build)
        return (known.version, known.name) if known else None

    try:
        rules = MatchRuleSet.load(rule_files)
        hosts = load_inventory(inventory, lookup)
    except (MatchRuleError, InventoryError, OSError) as exc:
        return str(exc), 2
    releases: list[Release] = []
    problems: list[str] = []
    for target in notes:
        try:
            result = await read_notes(target)
        except (OSError, FetchError) as exc:
            return f"cannot read {target}: {exc}", 2
        if result.release is None:
            problems.append(f"{target}: no release found ({'; '.join(result.warnings)})")
            continue
        catalog.add(result.release)
        releases.append(result.release)
    rows: list[dict[str, Any]] = [
        {
            "pr": m.pr,
            "release": m.release,
            "build": m.build,
            "host": m.host,
            "verdict": m.verdict.value,
            "reasons": list(m.reasons),
        }
        for release in releases
        for m in match_release(release, hosts, rules, catalog, others=releases).matches()
    ]
    code = 1 if problems and not releases else 0
    if as_json:
        return json.dumps(rows, indent=2, ensure_ascii=False), code
    lines = [
        f"{r['release']} PR {r['pr']} {r['host']}: {r['verdict']} — {'; '.join(r['reasons'])}" for r in rows
    ]
    return "\n".join([*problems, *lines]), code


async def sources_poll_once(poller: SourcePoller) -> tuple[str, int]:
    """Poll every enabled source once; print what is new and what failed."""
    await poller.restore()
    lines = []
    failed = 0
    for report in await poller.poll_all():
        if report.error:
            failed += 1
            lines.append(f"{report.source}: ERROR {report.error}")
        elif report.not_modified:
            lines.append(f"{report.source}: not modified")
        else:
            note = " (first poll: stored, not announced)" if report.primed else ""
            lines.append(f"{report.source}: {len(report.new)} new{note}")
            lines += [
                f"  {r.name} build {r.build} {r.release_date or ''} ({len(r.fixes)} fixes)"
                for r in report.new
            ]
        lines += [f"  warning: {w}" for w in report.warnings]
    if not lines:
        lines.append("no sources configured")
    return "\n".join(lines), 1 if failed else 0
