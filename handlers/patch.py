"""``patch <host|cluster> [to <release>]``: rolling patch through maintenance mode, install, reboot.

One host at a time (``--parallel N`` where the pre-checks allow): maintenance mode → install →
reboot → wait for reconnect → verify the build → exit maintenance mode → next. The install method
is configured per cluster (``jobs.methods``): the HostPatchManager with the depot (default), esxcli
over SSH with the release's image profile, or vLCM, which remediates the cluster itself in one step
and is then verified host by host. The first failure stops the rollout and
leaves that host in maintenance mode. The preview shows pre-checks, the steps and which fixes of the
target release matter to each host (from the matcher).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from bot.actions.esxcli import EsxcliError, pick_profile, update_command
from bot.actions.prechecks import Check, Options, check_host, parallel_problem, patch_steps
from bot.builds import KnownBuild
from bot.command.context import Context
from bot.command.grammar import BadArgument
from bot.command.selectors import Target, TargetArg
from bot.command.spec import CommandError
from bot.model import Host, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import match
from bot.releases.service import SOAK, freshness
from bot.store.release_records import ReleaseRepo
from handlers.jobs import Plan, Planned, busy, host_action, parse_overrides, runner_of

VmAction = Literal["none", "power-off", "suspend"]


def _target(ctx: Context, hosts: tuple[Host, ...], to: str | None, fresh: bool) -> KnownBuild:
    """The release to install: named, or the newest of the hosts' line that is neither withdrawn nor,
    without ``--fresh``, younger than the soak period. A withdrawn release is refused outright."""
    catalog = ctx.services.catalog
    if ctx.approved is not None:  # after ``yes``: the build the preview showed, whatever came since
        build = ctx.approved.get("options", {}).get("target_build")
        shown = catalog.lookup(build)
        if shown is None:
            raise CommandError(f"Refused, nothing was done: build {build} is no longer in the catalog.")
        return shown
    soak = ctx.services.releases.soak if ctx.services.releases else SOAK
    today = ctx.services.clock.now().date()
    if to:
        known = catalog.find(to) or catalog.find(re.sub(r"^(\d\.\d)\s*[uU]", r"\1 U", to))
        if known is None:
            raise CommandError(
                f"Unknown release `{to[:40]}`; say `{ctx.command.form('releases')}` for the list."
            )
        if known.withdrawn:
            instead = catalog.replacement(known)
            use = f" Patch to {instead.name} (build {instead.build}) instead." if instead else ""
            raise CommandError(
                f"{known.name} (build {known.build}) was withdrawn by VMware: {known.withdrawn}.{use}"
            )
        young = freshness(known, today, soak)
        if young and not fresh:
            raise CommandError(
                f"{known.name} (build {known.build}) is {young}: add `--fresh` to install it anyway."
            )
        return known
    line = next((".".join(h.version.split(".")[:2]) for h in hosts if h.version), None)
    candidates = (
        [k for k in catalog.product_line(line) if not k.withdrawn and not k.security_only] if line else []
    )
    if not fresh:
        candidates = [k for k in candidates if freshness(k, today, soak) is None]
    latest = max(candidates, key=lambda k: (k.release_date or date.min, k.build), default=None)
    if latest is None:
        raise CommandError("Cannot tell which release to install: say `to <release>`.")
    return latest


async def _fixes(ctx: Context, host: Host, target: KnownBuild) -> str | None:
    release = await ReleaseRepo(ctx.services.store.db).get(target.build)
    if release is None or not release.fixes:
        return None
    service = ctx.services.releases
    rules = service.rules if service is not None else MatchRuleSet.bundled()  # the rules `check` uses
    hits = [match(fix, host, release, rules, ctx.services.catalog) for fix in release.fixes]
    wanted = (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED)
    prs = [f"PR {m.pr} ({m.verdict.value})" for m in hits if m.verdict in wanted]
    return f"{host.name}: {target.name} brings fixes that matter here: {', '.join(prs)}" if prs else None


def _width(parallel: int) -> int:
    if not 1 <= parallel <= 32:
        raise BadArgument("must be a number of hosts from 1 to 32", param="parallel")
    return parallel


def _release_words(words: tuple[str, ...]) -> str | None:
    """``to 7.0 U2c`` / ``7.0 U2c`` / nothing → the release name (or None for the newest in line)."""
    if words and words[0].lower() == "to":
        words = words[1:]
    return " ".join(words) or None


def _groups(ctx: Context, hosts: tuple[Host, ...]) -> list[tuple[str, str | None, list[str]]]:
    """Hosts grouped by install method, in target order; vLCM groups are whole-cluster steps."""
    settings = runner_of(ctx).settings
    groups: list[tuple[str, str | None, list[str]]] = []
    for host in hosts:
        method = settings.method_for(host.cluster)
        key = host.cluster if method == "vlcm" else None
        found = next((g for g in groups if g[0] == method and g[1] == key), None)
        if found is None or (method != "vlcm" and groups[-1] is not found):
            groups.append((method, key, [host.name]))
        else:
            found[2].append(host.name)
    return groups


async def _method_checks(
    ctx: Context,
    groups: list[tuple[str, str | None, list[str]]],
    release: KnownBuild,
    options: dict[str, Any],
) -> list[Check]:
    runner = runner_of(ctx)
    checks: list[Check] = []
    methods = {g[0] for g in groups}
    depot = str(options["depot_url"])
    if methods & {"patch-manager", "esxcli"} and not depot:
        checks.append(Check("-", "method", False, "no depot URL configured (jobs.depot_url)"))
    if "esxcli" in methods:
        stored = await ReleaseRepo(ctx.services.store.db).get(release.build)
        profile = pick_profile(stored.image_profiles if stored else (), release.build)
        try:
            options["image_profile"] = profile or ""
            if profile is None:
                raise EsxcliError(
                    f"no image profile known for build {release.build} (poll the release feeds)"
                )
            if runner.esxcli is None:
                raise EsxcliError("esxcli over SSH is not configured (jobs.esxcli)")
            update_command(depot, profile)
            detail = f"esxcli software profile update -p {profile}, host keys from known_hosts"
            checks.append(Check("-", "method", True, detail))
        except EsxcliError as exc:
            checks.append(Check("-", "method", False, str(exc)))
    for method, cluster, names in groups:
        if method != "vlcm":
            continue
        options.setdefault("vlcm_clusters", {})[cluster or ""] = names
        ok = runner.lifecycle_for(runner.known_host(names[0])) is not None
        detail = (
            f"vLCM remediates {cluster} itself (maintenance mode, reboots) to build {release.build}"
            if ok
            else f"cluster {cluster} is set to vLCM but no vCenter REST client is configured"
        )
        checks.append(Check(cluster or "-", "method", ok, detail))
    return checks


async def _plan(
    ctx: Context,
    target: Target,
    to: str | None,
    vm_action: VmAction,
    evacuate: bool,
    parallel: int,
    fresh: bool = False,
) -> tuple[Plan, KnownBuild]:
    runner = runner_of(ctx)
    release = _target(ctx, target.hosts, to, fresh)
    opts = Options(kind="patch", vm_action=vm_action, target=release)
    locked = await busy(ctx, target.hosts)
    checks: list[Check] = []
    notes: list[str] = []
    states = []
    for host in target.hosts:
        state = await runner.state_of(host)
        if state is None:
            checks.append(Check(host.name, "connected", False, "vCenter does not answer for this host"))
            continue
        states.append(state)
        checks += check_host(state, opts, busy_with=locked.get(host.name))
        fixes = await _fixes(ctx, host, release)
        if fixes:
            notes.append(fixes)
        if ctx.services.advisories is not None and (
            closed := await ctx.services.advisories.closes(host, release.build, release.version)
        ):
            notes.append(f"{host.name}: {release.name} closes {', '.join(closed)}")
    groups = _groups(ctx, target.hosts)
    if parallel > 1 and any(g[0] == "vlcm" for g in groups):
        raise CommandError(
            "--parallel does not apply to vLCM clusters: vLCM's own remediation policy decides."
        )
    if vm_action != "none" and any(g[0] == "vlcm" for g in groups):
        raise CommandError("--vm-action does not apply to vLCM clusters: vLCM's remediation settings decide.")
    problem = parallel_problem(states, parallel, runner.settings.max_parallel)
    if problem:
        raise CommandError(f"--parallel {parallel} refused: {problem}.")
    depot = runner.settings.depot_url.format(version=release.version, build=release.build, name=release.name)
    options: dict[str, Any] = {
        "target_build": release.build,
        "target_name": release.name,
        "depot_url": depot,
        "vm_action": vm_action,
        "evacuate": evacuate,
        "parallel": parallel,
        "methods": {n: m for m, _, names in groups for n in names},
    }
    checks += await _method_checks(ctx, groups, release, options)
    pace = f"{parallel} hosts at a time" if parallel > 1 else "one host at a time"
    notes.append(
        f"Target {release.name} (build {release.build}) by {', '.join(sorted({g[0] for g in groups}))} "
        f"from {depot or 'NO DEPOT CONFIGURED'}; {pace}, stop at the first failure."
    )
    steps = tuple(patch_steps(groups, opts))
    plan = Plan("patch", target.hosts, tuple(checks), steps, options, tuple(notes))
    return plan, release


@host_action(
    "patch",
    help="Patch a host or a cluster, one host at a time (maintenance mode, install, reboot, verify)",
)
async def patch(
    ctx: Context,
    target: Annotated[Target, TargetArg()],
    *release: str,
    dry_run: bool = False,
    vm_action: VmAction = "none",
    evacuate: bool = False,
    override: str | None = None,
    parallel: int = 1,
    fresh: bool = False,
) -> Planned:
    overrides = parse_overrides(override)
    words = _release_words(release)
    plan, _ = await _plan(ctx, target, words, vm_action, evacuate, _width(parallel), fresh)
    return Planned(plan, overrides, dry_run=dry_run)
