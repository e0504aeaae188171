"""Pre-checks and step plans for host actions, from what vCenter says about each host right now.

``check_host`` turns a ``HostState`` into ``Check`` rows (the vLCM pre-check vocabulary: connected,
bootbank, maintenance mode, other hosts in maintenance, DRS, HA admission control, vSAN, VMs,
target release, fixes that matter). A failed blocking check stops the job unless its name is given
to ``--override``. ``*_steps`` build the step list each job kind runs. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.builds import KnownBuild
from bot.store.job_records import StepSpec
from bot.vsphere.host_ops import HostState

CHECK_NAMES = (
    "connected",
    "bootbank",
    "maintenance",
    "cluster-maintenance",
    "drs",
    "ha-admission",
    "vsan",
    "vms",
    "release",
    "method",
    "lock",
)


@dataclass(frozen=True, slots=True)
class Check:
    host: str
    name: str
    ok: bool
    detail: str
    blocking: bool = True

    @property
    def mark(self) -> str:
        if self.ok:
            return "ok"
        return "FAIL" if self.blocking else "warn"


@dataclass(frozen=True, slots=True)
class Options:
    """What the operator asked for, as the checks and plans need it."""

    kind: str  # patch, shutdown, reboot, maintenance-enter, maintenance-exit
    vm_action: str = "none"  # none (DRS moves them), power-off, suspend
    force: bool = False
    target: KnownBuild | None = None


def failures(checks: Iterable[Check], overrides: frozenset[str]) -> list[Check]:
    """Blocking failed checks that were not overridden (``all`` overrides every check)."""
    return [
        c for c in checks if not c.ok and c.blocking and c.name not in overrides and "all" not in overrides
    ]


def _vm_check(state: HostState, opts: Options) -> Check:
    on = state.powered_on_vms
    if not on:
        return Check(state.name, "vms", True, "no powered-on VMs")
    with_tools = sum(1 for vm in on if vm.tools_running)
    counted = f"{len(on)} powered-on VM(s), {with_tools} with VMware Tools running"
    if opts.kind in ("shutdown", "reboot"):
        return Check(state.name, "vms", True, f"{counted}: guest shutdown first, then the VM policy")
    if opts.vm_action != "none":
        return Check(state.name, "vms", True, f"{counted}: will {opts.vm_action} them")
    if state.drs_enabled and state.drs_behavior == "fullyAutomated":
        return Check(state.name, "vms", True, f"{counted}: DRS (fully automated) will move them")
    return Check(
        state.name,
        "vms",
        False,
        f"{counted} and DRS will not move them: move them, or use --vm-action power-off|suspend",
    )


def check_host(state: HostState, opts: Options, *, busy_with: int | None = None) -> list[Check]:
    name = state.name
    out: list[Check] = []
    if busy_with is not None:
        out.append(Check(name, "lock", False, f"host is busy with job #{busy_with}"))
    connected = state.connection == "connected"
    out.append(
        Check(name, "connected", connected, f"vCenter connection: {state.connection}, power {state.power}")
    )
    if opts.kind in ("patch", "reboot") and state.bootbank_mounted is False:
        advice = (
            "it must be rebooted or shut down first (`reboot`/`shutdown`)"
            if opts.kind == "patch"
            else "a reboot may not come back: shut it down and replace the boot device"
        )
        out.append(Check(name, "bootbank", False, f"the host has lost its bootbank: {advice}"))
    elif state.bootbank_mounted is None:
        out.append(Check(name, "bootbank", True, "bootbank state unknown", blocking=False))
    else:
        out.append(Check(name, "bootbank", state.bootbank_mounted is not False, "bootbank mounted"))
    if opts.kind == "maintenance-exit":
        out.append(Check(name, "maintenance", state.in_maintenance, "host is in maintenance mode"))
        return out
    if opts.kind in ("patch", "maintenance-enter"):
        out.append(
            Check(
                name,
                "maintenance",
                not state.in_maintenance,
                "already in maintenance mode (someone else's work?)"
                if state.in_maintenance
                else "not in maintenance mode",
            )
        )
    if state.cluster:
        others = state.cluster_hosts_in_maintenance
        out.append(
            Check(
                name,
                "cluster-maintenance",
                not others,
                f"other hosts of {state.cluster} in maintenance mode: {', '.join(others)}"
                if others
                else f"no other host of {state.cluster} in maintenance mode",
            )
        )
        behavior = state.drs_behavior or "unknown"
        out.append(
            Check(name, "drs", True, f"DRS {'on' if state.drs_enabled else 'off'} ({behavior})", False)
        )
        out.append(
            Check(
                name,
                "ha-admission",
                not state.ha_admission_control,
                "HA admission control is on: it can keep the host from entering maintenance mode"
                if state.ha_admission_control
                else "HA admission control off",
            )
        )
        vsan = "vSAN enabled: one host at a time" if state.vsan_enabled else "no vSAN"
        out.append(Check(name, "vsan", True, vsan, blocking=False))
    out.append(_vm_check(state, opts))
    if opts.kind == "patch" and opts.target is not None:
        target = opts.target
        newer = state.build is not None and target.build > state.build
        detail = (
            f"{target.name} (build {target.build}) is newer than build {state.build}"
            if newer
            else f"host build {state.build} is not older than {target.name} (build {target.build})"
        )
        out.append(Check(name, "release", newer, detail))
    return out


def patch_steps(groups: Sequence[tuple[str, str | None, Sequence[str]]], opts: Options) -> list[StepSpec]:
    """Steps per (method, cluster, hosts) group; vLCM remediates its cluster in one step itself."""
    steps: list[StepSpec] = []
    for method, cluster, hosts in groups:
        if method == "vlcm":
            steps.append(StepSpec("vlcm-apply", cluster, destructive=True))
            steps += [StepSpec("verify-build", host) for host in hosts]
            continue
        install = "esxcli-install" if method == "esxcli" else "install"
        for host in hosts:
            if opts.vm_action != "none":
                steps.append(StepSpec(f"vm-{opts.vm_action}", host, destructive=True))
            steps += [
                StepSpec("enter-maintenance", host),
                StepSpec(install, host, destructive=True),
                StepSpec("reboot", host, destructive=True),
                StepSpec("wait-reconnect", host),
                StepSpec("verify-build", host),
                StepSpec("exit-maintenance", host),
            ]
    return steps


def parallel_problem(states: Sequence[HostState], width: int, limit: int) -> str | None:
    """Why ``--parallel width`` is not allowed for these hosts (None: it is)."""
    if width <= 1:
        return None
    if width > limit:
        return f"--parallel {width} is above the configured maximum of {limit} (jobs.max_parallel)"
    if len(states) < width:
        return f"--parallel {width} needs at least {width} target hosts"
    clusters: dict[str, list[HostState]] = {}
    for state in states:
        if state.cluster is None:
            continue
        clusters.setdefault(state.cluster, []).append(state)
    for name, members in clusters.items():
        if any(s.vsan_enabled for s in members):
            return f"cluster {name} has vSAN: its hosts enter maintenance mode one at a time"
        first = members[0]
        size = first.cluster_size or len(members)
        busy = len(set(first.cluster_hosts_in_maintenance) | {s.name for s in members if s.in_maintenance})
        room = size - busy - 1  # one host of the cluster stays out of maintenance mode to run the VMs
        if width > room:
            return (
                f"cluster {name} has {size} hosts, {busy} already in maintenance mode: at most "
                f"{max(room, 1)} at a time keeps one host running its VMs"
            )
    return None


def power_steps(host: str, opts: Options, *, out_of_band: bool) -> list[StepSpec]:
    """Shutdown/reboot: guests, maintenance mode, the host; Redfish when vCenter lost the host."""
    if out_of_band:
        return [StepSpec("redfish-off", host, destructive=True)]
    steps = [StepSpec("shutdown-guests", host, destructive=True)]
    if not opts.force:
        steps.append(StepSpec("enter-maintenance", host))
    if opts.kind == "reboot":
        steps += [StepSpec("reboot", host, destructive=True), StepSpec("wait-reconnect", host)]
    else:
        steps.append(StepSpec("shutdown-host", host, destructive=True))
    return steps


def maintenance_steps(host: str, opts: Options) -> list[StepSpec]:
    if opts.kind == "maintenance-exit":
        return [StepSpec("exit-maintenance", host)]
    steps = [StepSpec(f"vm-{opts.vm_action}", host, destructive=True)] if opts.vm_action != "none" else []
    return [*steps, StepSpec("enter-maintenance", host)]


def power_on_steps(host: str) -> list[StepSpec]:
    return [StepSpec("redfish-on", host), StepSpec("wait-reconnect", host)]
