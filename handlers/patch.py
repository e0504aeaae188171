"""``patch <host|cluster> [to <release>]``: rolling patch through maintenance mode, install, reboot.

One host at a time: maintenance mode → HostPatchManager install from the depot → reboot → wait for
reconnect → verify the build → exit maintenance mode → next. The first failure stops the rollout and
leaves that host in maintenance mode. The preview shows pre-checks, the steps and which fixes of the
target release matter to each host (from the matcher).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from bot.commands import CommandError, Context, Role, command
from bot.esxi import KnownBuild
from bot.match_rules import RuleSet
from bot.matching import match
from bot.messages import Reply
from bot.model import Host, Verdict
from bot.prechecks import Check, Options, check_host, patch_steps
from bot.selectors import Target, TargetArg
from bot.store.releases import ReleaseRepo
from handlers.jobs import Plan, busy, parse_overrides, plan_reply, runner_of, start

VmAction = Literal["none", "power-off", "suspend"]


def _target(ctx: Context, hosts: tuple[Host, ...], to: str | None) -> KnownBuild:
    catalog = ctx.services.catalog
    if to:
        known = catalog.find(to) or catalog.find(re.sub(r"^(\d\.\d)\s*[uU]", r"\1 U", to))
        if known is None:
            raise CommandError(f"Unknown release `{to[:40]}`; say `releases` for the list.")
        return known
    line = next((".".join(h.version.split(".")[:2]) for h in hosts if h.version), None)
    latest = catalog.latest(line) if line else None
    if latest is None:
        raise CommandError("Cannot tell which release to install: say `to <release>`.")
    return latest


async def _fixes(ctx: Context, host: Host, target: KnownBuild) -> str | None:
    release = await ReleaseRepo(ctx.services.store.db).get(target.build)
    if release is None or not release.fixes:
        return None
    rules = RuleSet.bundled()
    hits = [match(fix, host, release, rules, ctx.services.catalog) for fix in release.fixes]
    wanted = (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED)
    prs = [f"PR {m.pr} ({m.verdict.value})" for m in hits if m.verdict in wanted]
    return f"{host.name}: {target.name} brings fixes that matter here: {', '.join(prs)}" if prs else None


def _release_words(words: tuple[str, ...]) -> str | None:
    """``to 7.0 U2c`` / ``7.0 U2c`` / nothing → the release name (or None for the newest in line)."""
    if words and words[0].lower() == "to":
        words = words[1:]
    return " ".join(words) or None


async def _plan(
    ctx: Context, target: Target, to: str | None, vm_action: VmAction, evacuate: bool
) -> tuple[Plan, KnownBuild]:
    runner = runner_of(ctx)
    release = _target(ctx, target.hosts, to)
    opts = Options(kind="patch", vm_action=vm_action, target=release)
    locked = await busy(ctx, target.hosts)
    checks: list[Check] = []
    notes: list[str] = []
    for host in target.hosts:
        state = await runner.state_of(host)
        if state is None:
            checks.append(Check(host.name, "connected", False, "vCenter does not answer for this host"))
            continue
        checks += check_host(state, opts, busy_with=locked.get(host.name))
        fixes = await _fixes(ctx, host, release)
        if fixes:
            notes.append(fixes)
    depot = runner.settings.depot_url.format(version=release.version, build=release.build, name=release.name)
    options = {
        "target_build": release.build,
        "target_name": release.name,
        "depot_url": depot,
        "vm_action": vm_action,
        "evacuate": evacuate,
    }
    names = [h.name for h in target.hosts]
    notes.append(
        f"Target {release.name} (build {release.build}) from {depot or 'NO DEPOT CONFIGURED'}; "
        "one host at a time, stop at the first failure."
    )
    plan = Plan("patch", target.hosts, tuple(checks), tuple(patch_steps(names, opts)), options, tuple(notes))
    return plan, release


async def _preview(
    ctx: Context,
    target: Target,
    *release: str,
    dry_run: bool = False,
    vm_action: VmAction = "none",
    evacuate: bool = False,
    override: str | None = None,
) -> Reply:
    overrides = parse_overrides(override)
    plan, _ = await _plan(ctx, target, _release_words(release), vm_action, evacuate)
    return plan_reply(plan, overrides, dry_run=dry_run)


@command(
    "patch",
    help="Patch a host or a cluster, one host at a time (maintenance mode, install, reboot, verify)",
    role=Role.OPERATOR,
    confirm=True,
    preview=_preview,
)
async def patch(
    ctx: Context,
    target: Annotated[Target, TargetArg()],
    *release: str,
    dry_run: bool = False,
    vm_action: VmAction = "none",
    evacuate: bool = False,
    override: str | None = None,
) -> Reply:
    overrides = parse_overrides(override)
    if dry_run:
        raise CommandError("A dry run has nothing to confirm.")
    plan, _ = await _plan(ctx, target, _release_words(release), vm_action, evacuate)
    return await start(ctx, plan, overrides)
