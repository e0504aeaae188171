"""Release commands: ``releases``, ``fixes``, ``pr``, ``affected`` (rooms subscribe in subscriptions)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Literal

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Block, Fields, Reply, Style, Table, Text, shorten
from bot.model import Release, Verdict
from bot.releases.matching import VERDICT_ORDER, FixMatches
from bot.releases.service import MATTERS, ReleaseService, freshness, hosts_phrase


def _service(ctx: Context) -> ReleaseService | None:
    service = getattr(ctx.services, "releases", None)
    return service if isinstance(service, ReleaseService) else None


def _missing() -> Reply:
    return Reply.error("Release data is not configured on this bot.")


def _status(ctx: Context, service: ReleaseService, build: int) -> str:
    known = service.catalog.lookup(build)
    if known is None:
        return ""
    if known.withdrawn:
        replacement = service.catalog.replacement(known)
        return "withdrawn" + (f", use {replacement.name}" if replacement else "")
    young = freshness(known, ctx.services.clock.now().date(), service.soak)
    return f"new: {young}" if young else ""


def _line_rows(
    ctx: Context, service: ReleaseService, line: str, noted: list[Release]
) -> list[tuple[str, ...]]:
    """Every catalog build of a product line (``9.0``) or update line (``7.0.3``), newest first, with
    the fix counts of those whose notes were read."""
    by_build = {r.build: r for r in noted}
    known = service.catalog.product_line(line) or service.catalog.update_line(line)
    known = sorted(known, key=lambda k: (k.release_date or date.min, k.build), reverse=True)
    rows: list[tuple[str, ...]] = []
    for k in known:
        release = by_build.get(k.build)
        fixes = str(len(release.fixes)) if release else "-"
        matter = str(_mattering(service, release)) if release else "-"
        day = k.release_date.isoformat() if k.release_date else "?"
        rows.append((k.name, str(k.build), day, fixes, matter, _status(ctx, service, k.build)))
    return rows


def _mattering(service: ReleaseService, release: Release) -> int:
    return sum(len(fm.hosts(*MATTERS)) > 0 for fm in service.match(release).fixes)


@command(
    "releases",
    help="Known ESXi/ESX releases: latest, a name (7.0 U2c, 9.0.1.0) or a line (7.0, 9.0)",
    role=Role.VIEWER,
)
async def releases(ctx: Context, *ref: str) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    text = " ".join(ref).strip()
    noted = await service.releases()
    rows: list[tuple[str, ...]]
    if text.lower() in ("", "latest") or text.isdigit():
        chosen = noted[:1] if text.lower() == "latest" else noted
        rows = [_row(ctx, service, r) for r in chosen if not text.isdigit() or str(r.build) == text]
    elif text.replace(".", "").isdigit() and text.count(".") in (1, 2):
        rows = _line_rows(ctx, service, text, noted)
    else:
        release = await service.find(text)
        known = service.catalog.find(text)
        if release is not None:
            rows = [_row(ctx, service, release)]
        elif known is not None:
            rows = [r for r in _line_rows(ctx, service, known.version, noted) if r[1] == str(known.build)]
        else:
            return Reply.text(f"No release called `{text}` is known.", style=Style.WARNING, ok=False)
    if not rows:
        return Reply.text("No releases are known yet.", style=Style.WARNING)
    summary = f"{len(rows)} release{'s' if len(rows) != 1 else ''}, newest {rows[0][0]}"
    withdrawn = sum(1 for r in rows if r[5].startswith("withdrawn"))
    if withdrawn:
        summary += f" ({withdrawn} withdrawn)"
    header = ("release", "build", "date", "fixes", "matter here", "status")
    data = [
        {"name": r[0], "build": int(r[1]), "fixes": None if r[3] == "-" else int(r[3]), "status": r[5]}
        for r in rows
    ]
    return Reply(
        summary=summary,
        blocks=(Table(header, tuple(rows), title=summary),),
        data={"releases": data},
    )


def _row(ctx: Context, service: ReleaseService, r: Release) -> tuple[str, ...]:
    day = r.release_date.isoformat() if r.release_date else "?"
    return (
        r.name,
        str(r.build),
        day,
        str(len(r.fixes)),
        str(_mattering(service, r)),
        _status(ctx, service, r.build),
    )


def _counts(fm: FixMatches) -> tuple[int, int]:
    return len(fm.hosts(Verdict.AFFECTED)), len(fm.hosts(Verdict.POSSIBLY_AFFECTED))


@command("fixes", help="Fixes of a release by component, with how many of your hosts each affects")
async def fixes(ctx: Context, *release_ref: str) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    ref = " ".join(release_ref) or "latest"
    release = await service.find(ref)
    if release is None:
        return Reply.text(f"No release `{ref}` with notes is known.", style=Style.WARNING, ok=False)
    result = service.match(release)
    by_component: dict[str, list[tuple[str, ...]]] = {}
    for fm in result.fixes:
        affected, possibly = _counts(fm)
        row = (f"PR {fm.fix.pr}", str(affected), str(possibly), shorten(fm.fix.title, 100))
        by_component.setdefault(fm.fix.component or "Other", []).append(row)
    blocks: list[Block] = [
        Table(("PR", "affected", "possibly", "title"), tuple(rows), title=component)
        for component, rows in by_component.items()
    ]
    summary = f"{release.name} (build {release.build}): {len(release.fixes)} fixes"
    return Reply(summary=summary, blocks=(Text(summary), *blocks), data={"release": release.name})


@command("pr", help="One fix: its release and the verdict for every host, with reasons")
async def pr(ctx: Context, number: str) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    found = await service.find_pr(number)
    if not found:
        return Reply.text(f"PR {number} is in no known release notes.", style=Style.WARNING, ok=False)
    release, fix = found[0]
    result = service.match(replace(release, fixes=(fix,)))
    rows = tuple(
        (host.split(".")[0], outcome.verdict.value, _unknown(outcome.missing), "; ".join(outcome.reasons))
        for outcome, hosts in result.fixes[0].groups
        for host in hosts
    )
    rows = tuple(sorted(rows, key=lambda r: (_rank(r[1]), r[0])))
    counts = Counter(r[1] for r in rows)
    summary = f"PR {fix.pr} ({release.name}, build {release.build}): " + ", ".join(
        f"{n} {verdict}" for verdict, n in sorted(counts.items(), key=lambda kv: _rank(kv[0]))
    )
    card = Fields(
        (("Release", f"{release.name} (build {release.build})"), ("Component", fix.component or "-")),
        title=f"PR {fix.pr}: {fix.title}",
    )
    return Reply(
        summary=summary,
        blocks=(card, Table(("host", "verdict", "undecided by", "reasons"), rows, title=summary)),
        data={"pr": fix.pr, "release": release.name, "verdicts": {r[0]: r[1] for r in rows}},
    )


@command("affected", help="Hosts and the fixes that matter to them, for a release or a PR")
async def affected(ctx: Context, *ref: str) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    text = " ".join(ref) or "latest"
    digits = text.upper().removeprefix("PR").strip()
    if digits.isdigit() and len(digits) <= 8 and await service.find_pr(digits):
        release, fix = (await service.find_pr(digits))[0]
        release = replace(release, fixes=(fix,))
    else:
        found = await service.find(text)
        if found is None:
            return Reply.text(f"No release or PR `{text}` is known.", style=Style.WARNING, ok=False)
        release = found
    per_host: dict[str, list[str]] = {}
    undecided: dict[str, dict[str, None]] = {}
    for fm in service.match(release).fixes:
        for host in fm.hosts(Verdict.AFFECTED):
            per_host.setdefault(host, []).append(fm.fix.pr)
        for position in fm.explainer.positions(fm.bits[VERDICT_ORDER.index(Verdict.POSSIBLY_AFFECTED)]):
            host = fm.explainer.names[position]
            per_host.setdefault(host, []).append(f"{fm.fix.pr}?")
            undecided.setdefault(host, {}).update(dict.fromkeys(fm.outcome(position).missing))
    if not per_host:
        return Reply.text(f"No host is affected by {release.name}'s fixes.", style=Style.SUCCESS)
    ranked = [  # hosts with the most affected fixes first; each host's affected PRs before the "?" ones
        (host, sorted(prs, key=lambda p: p.endswith("?")))
        for host, prs in sorted(
            per_host.items(), key=lambda kv: (-sum(not p.endswith("?") for p in kv[1]), kv[0])
        )
    ]
    rows = tuple(
        (h.split(".")[0], str(len(prs)), hosts_phrase(prs), _unknown(tuple(undecided.get(h, ()))))
        for h, prs in ranked
    )
    hosts_word = "host has" if len(rows) == 1 else "hosts have"
    summary = f"{len(rows)} {hosts_word} fixes that matter in {release.name} (? = possibly)"
    return Reply(
        summary=summary,
        blocks=(Table(("host", "fixes", "PRs", "? undecided by"), rows, title=summary),),
        data={
            "release": release.name,
            "hosts": dict(ranked),
            "undecided": {h: list(facts) for h, facts in undecided.items()},
        },
    )


def _unknown(facts: tuple[str, ...]) -> str:
    """The facts that would decide a possibly-affected verdict: what to tag, or what vCenter did not tell."""
    return ", ".join(facts) or "-"


def _rank(verdict: str) -> int:
    order = [
        v.value for v in (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED, Verdict.NOT_AFFECTED, Verdict.FIXED)
    ]
    return order.index(verdict) if verdict in order else len(order)


@command(
    "release",
    help="Mark a release withdrawn by VMware: release withdraw <release> <reason> [--instead <release>]",
    role=Role.ADMIN,
)
async def release(
    ctx: Context, action: Literal["withdraw"], ref: str, *reason: str, instead: str | None = None
) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    known = service.catalog.find(ref)
    if known is None:
        return Reply.text(f"No release called `{ref[:40]}` is known.", style=Style.WARNING, ok=False)
    replacement = service.catalog.find(instead) if instead else None
    if instead and replacement is None:
        return Reply.text(f"No release called `{instead[:40]}` is known.", style=Style.WARNING, ok=False)
    why = " ".join(reason).strip()
    if not why:
        return Reply.text("Say why: `release withdraw <release> <reason>`.", style=Style.WARNING, ok=False)
    marked = await service.withdraw(
        known, why[:300], replacement, by=ctx.user.id, now=ctx.services.clock.now()
    )
    use = service.catalog.replacement(marked)
    instead_text = f"; hosts should move to {use.name} (build {use.build})" if use else ""
    text = (
        f"{marked.name} (build {marked.build}) is marked withdrawn: {marked.withdrawn}{instead_text}. "
        "`patch` refuses it from now on."
    )
    data = {"build": marked.build, "withdrawn": marked.withdrawn, "replaced_by": use.build if use else None}
    return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data=data)
