"""What each job step does, by name: the step table the runner (``bot.actions.runner``) executes.

A step returns its result sentence or raises ``StepFailed`` / ``ActionError`` / ``RedfishError``.
Options come from the job's stored plan (``plan["options"]``), so a step does exactly what the
confirmation showed.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.actions.esxcli import EsxcliInstaller
from bot.actions.job_settings import JobSettings
from bot.actions.redfish import RedfishClient
from bot.model import Host
from bot.store.job_records import JobRecord, StepRecord
from bot.vsphere.host_ops import ClusterImageOps, HostOps


class StepRunner(Protocol):
    """What a step needs from the runner that executes it (``bot.actions.runner.JobRunner``)."""

    @property
    def settings(self) -> JobSettings: ...

    @property
    def esxcli(self) -> EsxcliInstaller | None: ...

    def require_actions(self, host: Host) -> HostOps: ...

    def redfish(self, host: Host) -> RedfishClient: ...

    def known_host(self, name: str) -> Host: ...

    def lifecycle_for(self, host: Host) -> ClusterImageOps | None: ...

    async def step_note(self, job: JobRecord, note: str) -> None: ...

    def remember(self, job: JobRecord, key: str, value: Any) -> None: ...

    def recall(self, job: JobRecord, key: str) -> Any: ...


class StepFailed(Exception):
    """A step could not be done; the message is the step's result for the report."""


def _opt(job: JobRecord, name: str, default: Any) -> Any:
    options = job.plan.get("options") or {}
    value = options.get(name)
    return default if value is None else value


async def _guests(runner: StepRunner, job: JobRecord, host: Host) -> str:
    actions = runner.require_actions(host)
    settings = runner.settings
    state = await actions.state(host.name)
    on = [vm.name for vm in state.powered_on_vms]
    if not on:
        return "no powered-on VMs"
    refused = await actions.vm_power(host.name, on, "shutdown-guest", limit=settings.task_timeout)
    asked = [name for name in on if name not in refused]
    still = await actions.wait_vms_off(
        host.name, asked, float(_opt(job, "guest_timeout", settings.guest_timeout))
    )
    remaining = [*still, *refused]
    done = f"{len(asked) - len(still)} of {len(on)} VM(s) shut down by their guest OS"
    if not remaining:
        return done
    policy = str(_opt(job, "vm_policy", settings.vm_policy))
    if policy == "abort":
        raise StepFailed(f"{done}; still on: {', '.join(remaining)} (policy abort)")
    if policy == "leave":
        return f"{done}; left running: {', '.join(remaining)}"
    await actions.vm_power(host.name, remaining, "power-off", limit=settings.task_timeout)
    return f"{done}; powered off: {', '.join(remaining)}"


async def _vm_action(runner: StepRunner, host: Host, action: str) -> str:
    actions = runner.require_actions(host)
    on = [vm.name for vm in (await actions.state(host.name)).powered_on_vms]
    if not on:
        return "no powered-on VMs"
    refused = await actions.vm_power(host.name, on, action, limit=runner.settings.task_timeout)
    if refused:
        raise StepFailed(f"{action} refused for {', '.join(refused)}")
    return f"{action}: {', '.join(on)}"


async def _enter(runner: StepRunner, job: JobRecord, host: Host) -> str:
    settings = runner.settings
    state = await runner.require_actions(host).state(host.name)
    if state.in_maintenance:
        return "already in maintenance mode"
    await runner.require_actions(host).enter_maintenance(
        host.name,
        limit=float(_opt(job, "maintenance_timeout", settings.maintenance_timeout)),
        evacuate_powered_off=bool(_opt(job, "evacuate", False)),
        retries=settings.maintenance_retries,
        retry_delay=settings.maintenance_retry_delay,
    )
    return "in maintenance mode"


async def _reboot(runner: StepRunner, job: JobRecord, host: Host) -> str:
    actions = runner.require_actions(host)
    runner.remember(job, f"boot:{host.name}", (await actions.state(host.name)).boot_time)
    await actions.reboot_host(
        host.name, force=bool(_opt(job, "force", False)), limit=runner.settings.task_timeout
    )
    return "reboot started"


async def _verify(runner: StepRunner, job: JobRecord, host: Host) -> str:
    want = _opt(job, "target_build", None)
    state = await runner.require_actions(host).state(host.name)
    if want is None or state.build != int(want):
        raise StepFailed(f"host reports build {state.build}, expected {want}")
    return f"build {state.build}"


async def _esxcli(runner: StepRunner, job: JobRecord, host: Host) -> str:
    installer = runner.esxcli
    if installer is None:
        raise StepFailed("esxcli over SSH is not configured (jobs.esxcli)")
    depot, profile = str(_opt(job, "depot_url", "")), str(_opt(job, "image_profile", ""))
    if not depot or not profile:
        raise StepFailed("the plan names no depot or image profile for esxcli")
    done = await installer.profile_update(host.name, depot=depot, profile=profile)
    return f"esxcli installed {profile} ({done.message})"


async def _vlcm(runner: StepRunner, job: JobRecord, step: StepRecord) -> str:
    cluster = step.host or ""
    names = [str(h) for h in (_opt(job, "vlcm_clusters", {}) or {}).get(cluster, [])]
    first = runner.known_host(names[0]) if names else None
    lifecycle = runner.lifecycle_for(first) if first else None
    if lifecycle is None or not names:
        raise StepFailed(f"no vLCM (vCenter REST) configured for cluster {cluster}")

    async def progress(note: str) -> None:
        await runner.step_note(job, note)

    return await lifecycle.remediate(
        cluster,
        names,
        build=int(_opt(job, "target_build", 0)),
        limit=runner.settings.vlcm_timeout,
        progress=progress,
    )


async def _redfish_off(runner: StepRunner, host: Host) -> str:
    settings = runner.settings
    async with runner.redfish(host) as bmc:
        result = await bmc.graceful_then_force_off(settings.bmc_graceful_timeout, settings.bmc_force_timeout)
    return f"BMC {result.bmc}: off ({result.path.value}, {result.total_seconds:.0f}s)"


async def _redfish_on(runner: StepRunner, host: Host) -> str:
    async with runner.redfish(host) as bmc:
        waited = await bmc.power_on(runner.settings.reconnect_timeout)
    return f"BMC reports On after {waited:.0f}s"


async def execute(runner: StepRunner, job: JobRecord, step: StepRecord, host: Host) -> str:
    settings = runner.settings
    name = step.name
    if name == "shutdown-guests":
        return await _guests(runner, job, host)
    if name in ("vm-power-off", "vm-suspend"):
        return await _vm_action(runner, host, name.removeprefix("vm-"))
    if name == "enter-maintenance":
        return await _enter(runner, job, host)
    if name == "exit-maintenance":
        await runner.require_actions(host).exit_maintenance(host.name, limit=settings.task_timeout)
        return "out of maintenance mode"
    if name == "install":
        depot = str(_opt(job, "depot_url", ""))
        if not depot:
            raise StepFailed("no depot URL configured (jobs.depot_url)")
        await runner.require_actions(host).install_patch(host.name, [depot], limit=settings.task_timeout)
        return f"installed from {depot}"
    if name == "esxcli-install":
        return await _esxcli(runner, job, host)
    if name == "vlcm-apply":
        return await _vlcm(runner, job, step)
    if name == "reboot":
        return await _reboot(runner, job, host)
    if name == "wait-reconnect":
        state = await runner.require_actions(host).wait_reconnect(
            host.name, booted_after=runner.recall(job, f"boot:{host.name}"), limit=settings.reconnect_timeout
        )
        return f"back: {state.describe()}"
    if name == "verify-build":
        return await _verify(runner, job, host)
    if name == "shutdown-host":
        await runner.require_actions(host).shutdown_host(
            host.name, force=bool(_opt(job, "force", False)), limit=settings.task_timeout
        )
        return "shutdown started"
    if name == "redfish-off":
        return await _redfish_off(runner, host)
    if name == "redfish-on":
        return await _redfish_on(runner, host)
    raise StepFailed(f"unknown step {name}")
