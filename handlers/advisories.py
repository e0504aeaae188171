"""Security advisories: ``advisories [open|all]``, ``vmsa <id>``, ``cve <id>`` (topic ``security``)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from bot.advisories.matching import AdvisoryMatches, CveVerdicts
from bot.advisories.model import Advisory, FixState, KevEntry, Verdict
from bot.advisories.service import PAGE_KIND, AdvisoryService, exposure_phrase, hosts_phrase
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import CommandError, command
from bot.messages import Block, Fields, Reply, Style, Table, Text

_ORDER = (Verdict.VULNERABLE, Verdict.UNKNOWN, Verdict.FIXED, Verdict.NOT_APPLICABLE)
_ID = re.compile(r"^(?:VMSA-)?(\d{4})-(\d{1,4})$", re.IGNORECASE)
_CVE = re.compile(r"^(?:CVE-)?(\d{4})-(\d{4,7})$", re.IGNORECASE)


def _service(ctx: Context) -> AdvisoryService:
    if ctx.services.advisories is None:
        raise CommandError("Security advisories are not configured on this bot.")
    return ctx.services.advisories


def _advisory_id(raw: str) -> str:
    m = _ID.match(raw.strip())
    if m is None:
        raise CommandError(
            f"`{raw[:30]}` is not an advisory id like VMSA-2025-0004; `advisories all` lists them."
        )
    return f"VMSA-{m.group(1)}-{int(m.group(2)):04d}"


def _exploited_note(result: AdvisoryMatches, kev: dict[str, KevEntry]) -> str | None:
    listed = [c.cve for c in result.cves if c.exploited]
    if not listed:
        return None
    by_entry: dict[str, list[str]] = {}
    for found in listed:
        by_entry.setdefault(kev[found].describe() if found in kev else "in KEV", []).append(found)
    return "EXPLOITED IN THE WILD: " + "; ".join(f"{', '.join(c)} ({said})" for said, c in by_entry.items())


def _host_rows(cves: tuple[CveVerdicts, ...]) -> tuple[tuple[str, ...], ...]:
    """One row per (host, outcome): CVEs with the same verdict and reasons on a host share a row."""
    rows: dict[tuple[str, str, str, str], list[str]] = {}
    for cve in cves:
        for outcome, hosts in cve.groups:
            for host in hosts:
                key = (host, outcome.verdict.value, outcome.fixed_by or "-", "; ".join(outcome.reasons))
                rows.setdefault(key, []).append(cve.cve)
    ordered = sorted(rows.items(), key=lambda kv: (_ORDER.index(Verdict(kv[0][1])), kv[0][0]))
    return tuple(
        (
            host.split(".")[0],
            verdict,
            ", ".join(found) if len(found) < len(cves) else "all",
            fixed_by,
            reasons,
        )
        for (host, verdict, fixed_by, reasons), found in ordered
    )


@command(
    "advisories", help="Security advisories: `open` (hosts vulnerable, default) or `all`", role=Role.VIEWER
)
async def advisories(ctx: Context, scope: Literal["open", "all"] = "open") -> Reply:
    service = _service(ctx)
    results = await service.match()
    if scope == "open":
        results = [r for r in results if r.hosts(Verdict.VULNERABLE)]
    if not results:
        text = "No advisory leaves a host vulnerable." if scope == "open" else "No advisories are known yet."
        return Reply.text(text, style=Style.SUCCESS)
    results.sort(key=lambda r: (not r.exploited, -len(r.hosts(Verdict.VULNERABLE))))
    kev = await service.kev()
    rows = []
    for r in results:
        due = min(
            (d for c in r.cves if c.exploited and c.cve in kev and (d := kev[c.cve].due_date)), default=None
        )
        rows.append(
            (
                r.advisory.id,
                r.advisory.severity or "?",
                ("KEV" + (f", due {due}" if due else "")) if r.exploited else "",
                str(len(r.hosts(Verdict.VULNERABLE))),
                await _page_state(ctx, r.advisory.id),
                r.advisory.title[:90],
            )
        )
    exploited = sum(1 for r in results if r.exploited and r.hosts(Verdict.VULNERABLE))
    summary = (
        f"{len(rows)} advisor{'ies' if len(rows) != 1 else 'y'}"
        + (" leave hosts vulnerable" if scope == "open" else "")
        + (f"; {exploited} exploited in the wild with vulnerable hosts" if exploited else "")
    )
    return Reply(
        summary=summary,
        blocks=(
            Table(
                ("advisory", "severity", "exploited", "vulnerable hosts", "page", "title"),
                tuple(rows),
                title=summary,
            ),
        ),
        data={
            "advisories": [
                {
                    "id": r.advisory.id,
                    "severity": r.advisory.severity,
                    "exploited": r.exploited,
                    "vulnerable": r.hosts(Verdict.VULNERABLE),
                }
                for r in results
            ]
        },
    )


async def _page_state(ctx: Context, advisory_id: str) -> str:
    """The advisory's open page, if any: ``#12 acknowledged by ann`` / ``#12 firing`` / ``-``."""
    engine = ctx.services.alerts
    rec = await engine.alerts.open_for(advisory_id, PAGE_KIND) if engine is not None else None
    if rec is None:
        return "-"
    return f"#{rec.id} acknowledged by {rec.acked_by}" if rec.acked_by else f"#{rec.id} {rec.state.value}"


def _card(advisory: Advisory) -> Fields:
    cves = "; ".join(f"{c.id} ({c.cvss if c.cvss is not None else '?'})" for c in advisory.cves)
    items = [
        ("Severity", advisory.severity or "?"),
        ("Published", advisory.published.isoformat() if advisory.published else "?"),
        ("Revision", f"{advisory.revision or '?'} (updated {advisory.updated or '?'})"),
        ("CVEs (CVSSv3)", cves or "?"),
    ]
    if advisory.url:
        items.append(("Advisory", advisory.url))
    return Fields(tuple(items), title=f"{advisory.id}: {advisory.title}")


def _workaround(advisory: Advisory) -> Text:
    no_patch = sorted(
        {lf.line for lf in advisory.lines if any(f.state is FixState.NO_PATCH for f in lf.fixes)}
    )
    said = f"No patch planned for ESXi {', '.join(no_patch)}. " if no_patch else ""
    if advisory.workaround:
        kb = (
            f" ({advisory.workaround_kb})"
            if advisory.workaround_kb and advisory.workaround_kb not in advisory.workaround
            else ""
        )
        return Text(
            f"{said}Workaround: {advisory.workaround}{kb}", Style.WARNING if no_patch else Style.PLAIN
        )
    return Text(
        f"{said}Workaround: none published; patching is the fix.", Style.WARNING if no_patch else Style.PLAIN
    )


@command(
    "vmsa",
    help="One security advisory: fixed builds, every host's verdict with reasons, the workaround",
    role=Role.VIEWER,
)
async def vmsa(ctx: Context, advisory_id: str) -> Reply:
    service = _service(ctx)
    wanted = _advisory_id(advisory_id)
    advisory = await service.find(wanted)
    if advisory is None:
        return Reply.text(
            f"{wanted} is not known; `advisories all` lists the known ones.", style=Style.WARNING, ok=False
        )
    result = (await service.match([advisory]))[0]
    kev = await service.kev()
    vulnerable = result.hosts(Verdict.VULNERABLE)
    worst: dict[str, Verdict] = {}
    for found in result.cves:
        for outcome, hosts in found.groups:
            for host in hosts:
                if host not in worst or _ORDER.index(outcome.verdict) < _ORDER.index(worst[host]):
                    worst[host] = outcome.verdict
    counts = Counter(worst.values())
    summary = (
        f"{advisory.id} ({advisory.severity or '?'}): "
        + ("EXPLOITED, " if result.exploited else "")
        + f"{len(vulnerable)} host{'s' if len(vulnerable) != 1 else ''} vulnerable"
        + (f" ({hosts_phrase(vulnerable)})" if vulnerable else "")
        + exposure_phrase(result)
        + "".join(f", {n} {v.value}" for v in _ORDER[1:] if (n := counts.get(v, 0)))
    )
    blocks: list[Block] = [
        Text(
            summary,
            Style.ERROR
            if result.exploited and vulnerable
            else Style.WARNING
            if vulnerable
            else Style.SUCCESS,
        ),
        _card(advisory),
    ]
    if note := _exploited_note(result, kev):
        blocks.append(Text(note, Style.ERROR))
    fixes = service.fixed_builds(advisory)
    if fixes:
        blocks.append(
            Table(("line", "fixed by", "workaround"), tuple(fixes), title="Fixed builds (response matrix)")
        )
    else:
        blocks.append(Text("The advisory's response matrix is not known: no fixed builds.", Style.WARNING))
    rows = _host_rows(result.cves)
    blocks.append(Table(("host", "verdict", "CVEs", "fixed by", "why"), rows, title="Hosts"))
    blocks.append(_workaround(advisory))
    return Reply(
        summary=summary,
        blocks=tuple(blocks),
        data={
            "advisory": advisory.id,
            "exploited": result.exploited,
            "matches": [m.as_json() for m in result.matches()],
        },
    )


@command("cve", help="One CVE: its advisory, whether it is exploited, every host's verdict", role=Role.VIEWER)
async def cve(ctx: Context, cve_id: str) -> Reply:
    service = _service(ctx)
    m = _CVE.match(cve_id.strip())
    if m is None:
        raise CommandError(f"`{cve_id[:30]}` is not a CVE id like CVE-2024-37085.")
    wanted = f"CVE-{m.group(1)}-{m.group(2)}"
    found = await service.with_cve(wanted)
    kev = await service.kev()
    if not found:
        listed = f" It is in CISA KEV ({kev[wanted].describe()})." if wanted in kev else ""
        return Reply.text(f"{wanted} is in no known advisory.{listed}", style=Style.WARNING, ok=False)
    blocks: list[Block] = []
    vulnerable: list[str] = []
    for result in await service.match(found):
        verdicts = tuple(c for c in result.cves if c.cve == wanted)
        vulnerable += [h for c in verdicts for h in c.hosts(Verdict.VULNERABLE)]
        described = result.advisory.cve(wanted)
        score = f", CVSSv3 {described.cvss}" if described and described.cvss is not None else ""
        blocks.append(
            Text(
                f"{wanted} in {result.advisory.id}{score}: {described.title if described else ''}".rstrip(
                    ": "
                )
            )
        )
        if described and described.text:
            blocks.append(Text(described.text[:600]))
        blocks.append(
            Table(
                ("host", "verdict", "CVEs", "fixed by", "why"), _host_rows(verdicts), title=result.advisory.id
            )
        )
    exploited = wanted in kev
    vulnerable = list(dict.fromkeys(vulnerable))
    summary = (
        f"{wanted}: "
        + (f"EXPLOITED ({kev[wanted].describe()}), " if exploited else "not in CISA KEV, ")
        + f"{len(vulnerable)} host{'s' if len(vulnerable) != 1 else ''} vulnerable"
        + (f" ({hosts_phrase(vulnerable)})" if vulnerable else "")
    )
    return Reply(
        summary=summary,
        blocks=(Text(summary, Style.ERROR if exploited and vulnerable else Style.PLAIN), *blocks),
        data={
            "cve": wanted,
            "exploited": exploited,
            "vulnerable": vulnerable,
            "advisories": [a.id for a in found],
        },
    )
