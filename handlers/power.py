"""``shutdown <host>``, ``reboot <host>``, ``power on <host>``, ``maintenance enter|exit <host>``.

Shutdown and reboot shut the guests down first (VMware Tools), then apply the VM policy to what is
still running, enter maintenance mode and call ShutdownHost/RebootHost. ``--force`` skips maintenance
mode and passes force=true, as vSphere's own flag does. A host vCenter has lost (not responding) is
shut down through its BMC instead: Redfish GracefulShutdown, then ForceOff after the timeout.
``power on`` uses the BMC's Redfish ``On`` and waits for the host to reconnect to vCenter.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from bot.actions.prechecks import Check, Options, check_host, maintenance_steps, power_on_steps, power_steps
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.selectors import HostArg
from bot.command.spec import CommandError, CommandSpec, command
from bot.messages import Reply
from bot.model import Host
from handlers.jobs import Plan, busy, parse_overrides, plan_reply, runner_of, start

VmAction = Literal["none", "power-off", "suspend"]
VmPolicy = Literal["power-off", "leave", "abort"]


async def _power_plan(
    ctx: Context, kind: str, host: Host, force: bool, vm_policy: str | None, guest_timeout: timedelta | None
) -> Plan:
    runner = runner_of(ctx)
    opts = Options(kind=kind, force=force)
    locked = await busy(ctx, [host])
    state = await runner.state_of(host)
    options: dict[str, object] = {
        "force": force,
        "vm_policy": vm_policy or runner.settings.vm_policy,
        "guest_timeout": guest_timeout.total_seconds() if guest_timeout else runner.settings.guest_timeout,
    }
    if state is None or state.connection != "connected":
        seen = state.connection if state else "no answer from vCenter"
        lock = (
            [Check(host.name, "lock", False, f"host is busy with job #{locked[host.name]}")] if locked else []
        )
        if kind == "shutdown" and runner.has_bmc(host):
            settings = runner.settings
            detail = (
                f"not responding to vCenter ({seen}): its BMC will do it (Redfish GracefulShutdown, "
                f"ForceOff after {settings.bmc_graceful_timeout:g} s)"
            )
            checks = (*lock, Check(host.name, "connected", False, detail, blocking=False))
            return Plan(kind, (host,), checks, tuple(power_steps(host.name, opts, out_of_band=True)), options)
        why = "no BMC is configured for it" if kind == "shutdown" else "a reboot needs vCenter"
        checks = (*lock, Check(host.name, "connected", False, f"not responding to vCenter ({seen}); {why}"))
        return Plan(kind, (host,), checks, (), options)
    checks = tuple(check_host(state, opts, busy_with=locked.get(host.name)))
    return Plan(kind, (host,), checks, tuple(power_steps(host.name, opts, out_of_band=False)), options)


def _power_command(kind: Literal["shutdown", "reboot"], help_text: str) -> CommandSpec:
    """``shutdown`` and ``reboot`` share their options, preview and job; only the last step differs."""

    async def preview(
        ctx: Context,
        host: Host,
        *,
        force: bool = False,
        vm_policy: VmPolicy | None = None,
        guest_timeout: timedelta | None = None,
        override: str | None = None,
    ) -> Reply:
        plan = await _power_plan(ctx, kind, host, force, vm_policy, guest_timeout)
        return plan_reply(ctx, plan, parse_overrides(override))

    async def run(
        ctx: Context,
        host: Annotated[Host, HostArg()],
        *,
        force: bool = False,
        vm_policy: VmPolicy | None = None,
        guest_timeout: timedelta | None = None,
        override: str | None = None,
    ) -> Reply:
        plan = await _power_plan(ctx, kind, host, force, vm_policy, guest_timeout)
        return await start(ctx, plan, parse_overrides(override))

    return command(kind, help=help_text, role=Role.OPERATOR, confirm=True, preview=preview)(run)


shutdown = _power_command(
    "shutdown", "Shut a host down: guests first, then maintenance mode and the host (BMC if vCenter lost it)"
)
reboot = _power_command(
    "reboot", "Reboot a host: guests first, then maintenance mode, reboot and wait for it to reconnect"
)


async def _power_on_plan(ctx: Context, host: Host) -> Plan:
    runner = runner_of(ctx)
    locked = await busy(ctx, [host])
    checks = [Check(host.name, "connected", runner.has_bmc(host), "BMC configured (Redfish On)")]
    if not runner.has_bmc(host):
        checks = [Check(host.name, "connected", False, "no BMC is configured for this host")]
    if locked:
        checks.append(Check(host.name, "lock", False, f"host is busy with job #{locked[host.name]}"))
    return Plan("power-on", (host,), tuple(checks), tuple(power_on_steps(host.name)), {})


async def _power_preview(ctx: Context, action: Literal["on"], host: Host) -> Reply:
    return plan_reply(ctx, await _power_on_plan(ctx, host), frozenset())


@command(
    "power",
    help="`power on <host>`: switch a host on through its BMC and wait for it to reconnect",
    role=Role.OPERATOR,
    confirm=True,
    preview=_power_preview,
)
async def power(ctx: Context, action: Literal["on"], host: Annotated[Host, HostArg()]) -> Reply:
    return await start(ctx, await _power_on_plan(ctx, host), frozenset())


async def _mm_plan(
    ctx: Context, action: str, host: Host, evacuate: bool, vm_action: str, limit: timedelta | None
) -> Plan:
    runner = runner_of(ctx)
    kind = f"maintenance-{action}"
    opts = Options(kind=kind, vm_action=vm_action)
    locked = await busy(ctx, [host])
    state = await runner.state_of(host)
    options: dict[str, object] = {"evacuate": evacuate, "vm_action": vm_action}
    if limit is not None:
        options["maintenance_timeout"] = limit.total_seconds()
    if state is None:
        checks: tuple[Check, ...] = (Check(host.name, "connected", False, "vCenter does not answer"),)
    else:
        checks = tuple(check_host(state, opts, busy_with=locked.get(host.name)))
    return Plan(kind, (host,), checks, tuple(maintenance_steps(host.name, opts)), options)


async def _mm_preview(
    ctx: Context,
    action: Literal["enter", "exit"],
    host: Host,
    *,
    evacuate: bool = False,
    vm_action: VmAction = "none",
    timeout: timedelta | None = None,  # noqa: ASYNC109 - the chat option `--timeout`
    override: str | None = None,
) -> Reply:
    plan = await _mm_plan(ctx, action, host, evacuate, vm_action, timeout)
    return plan_reply(ctx, plan, parse_overrides(override))


@command(
    "maintenance",
    help="`maintenance enter|exit <host>` [--evacuate] [--vm-action none|power-off|suspend] [--timeout 10m]",
    role=Role.OPERATOR,
    confirm=True,
    preview=_mm_preview,
)
async def maintenance(
    ctx: Context,
    action: Literal["enter", "exit"],
    host: Annotated[Host, HostArg()],
    *,
    evacuate: bool = False,
    vm_action: VmAction = "none",
    timeout: timedelta | None = None,  # noqa: ASYNC109 - the chat option `--timeout`
    override: str | None = None,
) -> Reply:
    if action == "exit" and (evacuate or vm_action != "none"):
        raise CommandError("--evacuate and --vm-action only apply to `maintenance enter`.")
    plan = await _mm_plan(ctx, action, host, evacuate, vm_action, timeout)
    return await start(ctx, plan, parse_overrides(override))
