"""Release commands: ``releases``, ``fixes``, ``pr``, ``affected`` (rooms subscribe in subscriptions)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Block, Fields, Reply, Style, Table, Text, shorten
from bot.model import Verdict
from bot.releases.matching import FixMatches
from bot.releases.service import MATTERS, ReleaseService, hosts_phrase


def _service(ctx: Context) -> ReleaseService | None:
    service = getattr(ctx.services, "releases", None)
    return service if isinstance(service, ReleaseService) else None


def _missing() -> Reply:
    return Reply.error("Release data is not configured on this bot.")


@command("releases", help="Known ESXi releases: latest, a name (7.0 U2c) or a line (7.0)", role=Role.VIEWER)
async def releases(ctx: Context, *ref: str) -> Reply:
    service = _service(ctx)
    if service is None:
        return _missing()
    text = " ".join(ref)
    if text and text.lower() != "latest" and not text.replace(".", "").isdigit():
        release = await service.find(text)
        if release is None:
            return Reply.text(f"No release called `{text}` is known.", style=Style.WARNING, ok=False)
        chosen = [release]
    else:
        chosen = await service.releases()
        if text.lower() == "latest":
            chosen = chosen[:1]
        elif text:
            chosen = [r for r in chosen if r.line == text or r.version == text or str(r.build) == text]
    if not chosen:
        return Reply.text("No releases are known yet.", style=Style.WARNING)
    rows = tuple(
        (
            r.name,
            str(r.build),
            r.release_date.isoformat() if r.release_date else "?",
            str(len(r.fixes)),
            str(sum(len(fm.hosts(*MATTERS)) > 0 for fm in service.match(r).fixes)),
        )
        for r in chosen
    )
    summary = f"{len(rows)} release{'s' if len(rows) != 1 else ''}, newest {chosen[0].name}"
    return Reply(
        summary=summary,
        blocks=(Table(("release", "build", "date", "fixes", "matter here"), rows, title=summary),),
        data={"releases": [{"name": r.name, "build": r.build, "fixes": len(r.fixes)} for r in chosen]},
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
        (host.split(".")[0], outcome.verdict.value, "; ".join(outcome.reasons))
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
        blocks=(card, Table(("host", "verdict", "reasons"), rows, title=summary)),
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
    for fm in service.match(release).fixes:
        for verdict in MATTERS:
            mark = "" if verdict is Verdict.AFFECTED else "?"
            for host in fm.hosts(verdict):
                per_host.setdefault(host, []).append(f"{fm.fix.pr}{mark}")
    if not per_host:
        return Reply.text(f"No host is affected by {release.name}'s fixes.", style=Style.SUCCESS)
    ranked = sorted(per_host.items(), key=lambda kv: (-sum(not p.endswith("?") for p in kv[1]), kv[0]))
    rows = tuple((h.split(".")[0], str(len(prs)), hosts_phrase(prs)) for h, prs in ranked)
    hosts_word = "host has" if len(rows) == 1 else "hosts have"
    summary = f"{len(rows)} {hosts_word} fixes that matter in {release.name} (? = possibly)"
    return Reply(
        summary=summary,
        blocks=(Table(("host", "fixes", "PRs"), rows, title=summary),),
        data={"release": release.name, "hosts": dict(ranked)},
    )


def _rank(verdict: str) -> int:
    order = [
        v.value for v in (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED, Verdict.NOT_AFFECTED, Verdict.FIXED)
    ]
    return order.index(verdict) if verdict in order else len(order)
