"""Host operations on vCenter: read a host's state, maintenance mode, guest shutdown, host
shutdown/reboot, patch install through the HostPatchManager, waits for tasks and reconnects.

Every pyVmomi call runs through a ``Door``: a coroutine that runs ``fn(service_instance)`` on the
vCenter client's worker threads (``door_for(vsphere)``). Functions that run there return plain
values (morefs as strings, ``HostState``); no ``vim`` object leaves a worker thread. Tasks are
started in one call and then polled from asyncio, so a long task never holds a worker thread and a
cancelled job stops waiting at once. Every failure is an ``ActionError`` with a sentence for chat.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from pyVmomi import vim, vmodl

from bot.clock import Clock
from bot.vsphere.host_ops import ActionError, HostState, VmState

if TYPE_CHECKING:
    from bot.vsphere.client import VSphere

log = logging.getLogger(__name__)

Door = Callable[[Callable[[Any], Any]], Awaitable[Any]]
POLL = 0.25  # seconds between task / state polls


def door_for(vsphere: VSphere) -> Door:
    """The client's one door to its worker threads (``VSphere.call``: re-login once)."""
    return vsphere.call


def _fault_text(exc: BaseException) -> str:
    # PlatformConfigFault carries the host's own words in ``text``; ``msg`` may be a generic label.
    msg = getattr(exc, "text", None) or getattr(exc, "msg", None) or ""
    name = type(exc).__name__.rsplit(".", 1)[-1]
    return f"{name}: {msg}" if msg else name


def _find_host(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        wanted = name.casefold()
        for host in view.view:
            hname = host.name.casefold()
            if hname == wanted or hname.split(".", 1)[0] == wanted:
                return host
    finally:
        view.Destroy()
    raise ActionError(f"vCenter has no host named {name}")


def _safe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except (AttributeError, vmodl.MethodFault):
        return None


def _bootbank(host: Any) -> bool | None:
    mounts = _safe(lambda: host.config.fileSystemVolume.mountInfo) or []
    states = [
        bool(m.mountInfo.mounted)
        for m in mounts
        if m.volume is not None and str(m.volume.name).upper().startswith("BOOTBANK")
    ]
    return all(states) if states else None


def _tools_running(vm: Any) -> bool:
    return bool(_safe(lambda: vm.guest.toolsRunningStatus) == "guestToolsRunning")


def _read_state(host: Any) -> HostState:
    product = _safe(lambda: host.summary.config.product)
    build = getattr(product, "build", None)
    vms = tuple(
        VmState(
            name=str(vm.name),
            power=str(vm.runtime.powerState),
            tools_running=_tools_running(vm),
        )
        for vm in (host.vm or [])
    )
    state = HostState(
        name=str(host.name),
        connection=str(host.runtime.connectionState),
        power=str(host.runtime.powerState),
        in_maintenance=bool(host.runtime.inMaintenanceMode),
        version=getattr(product, "version", None),
        build=int(build) if build and str(build).isdigit() else None,
        boot_time=_safe(lambda: host.runtime.bootTime),
        bootbank_mounted=_bootbank(host),
        reboot_required=_safe(lambda: host.summary.rebootRequired),
        vms=vms,
    )
    parent = host.parent
    if not isinstance(parent, vim.ClusterComputeResource):
        return state
    config = _safe(lambda: parent.configurationEx)
    others = tuple(
        str(h.name) for h in parent.host if h.name != host.name and bool(h.runtime.inMaintenanceMode)
    )
    return replace(
        state,
        cluster=str(parent.name),
        drs_enabled=_safe(lambda: bool(config.drsConfig.enabled)),
        drs_behavior=_safe(lambda: config.drsConfig.defaultVmBehavior or None),
        ha_admission_control=_safe(lambda: bool(config.dasConfig.admissionControlEnabled)),
        vsan_enabled=_safe(lambda: bool(config.vsanConfigInfo.enabled)),
        cluster_hosts_in_maintenance=others,
        cluster_size=len(parent.host),
    )


class HostActions:
    """The operations jobs run on one vCenter, addressed by host name."""

    def __init__(self, door: Door, clock: Clock, *, poll: float = POLL) -> None:
        self._door = door
        self._clock = clock
        self._poll = poll

    async def state(self, host: str) -> HostState:
        def read(si: Any) -> HostState:
            return _read_state(_find_host(si, host))

        return cast(HostState, await self._run(read))

    async def _run(self, fn: Callable[[Any], Any]) -> Any:
        try:
            return await self._door(fn)
        except ActionError:
            raise
        except vmodl.MethodFault as exc:
            raise ActionError(_fault_text(exc)) from None

    async def _start(self, host: str, start: Callable[[Any, Any], Any]) -> str:
        """Start a task on the host's worker side; returns the task's moref value."""

        def call(si: Any) -> str:
            return str(start(si, _find_host(si, host))._moId)

        return cast(str, await self._run(call))

    async def wait_task(self, task_id: str, limit: float, what: str) -> Any:
        """Poll a task until it ends; its result, or ActionError with the fault / on limit."""

        def read(si: Any) -> tuple[str, Any, str | None]:
            info = vim.Task(task_id, stub=si._stub).info  # type: ignore[no-untyped-call]
            error = _fault_text(info.error) if info.error is not None else None
            return str(info.state), info.result if str(info.state) == "success" else None, error

        deadline = self._clock.monotonic() + limit
        while True:
            state, result, error = await self._run(read)
            if state == "success":
                return result
            if state == "error":
                raise ActionError(f"{what} failed: {error or 'unknown error'}")
            if self._clock.monotonic() >= deadline:
                raise ActionError(f"{what} did not finish within {limit:g} s (task {task_id} still {state})")
            await self._clock.sleep(self._poll)

    async def enter_maintenance(
        self,
        host: str,
        *,
        limit: float,
        evacuate_powered_off: bool = False,
        retries: int = 0,
        retry_delay: float = 5.0,
    ) -> None:
        """Enter maintenance mode, waiting up to ``limit`` for VMs to leave; retried like vLCM."""
        for attempt in range(retries + 1):
            task = await self._start(
                host,
                lambda si, h: h.EnterMaintenanceMode_Task(
                    timeout=max(0, int(limit)), evacuatePoweredOffVms=evacuate_powered_off
                ),
            )
            try:
                await self.wait_task(task, limit + 30, f"maintenance mode on {host}")
                return
            except ActionError:
                if attempt == retries:
                    raise
                log.warning(
                    "entering maintenance mode on %s failed (attempt %d); retrying", host, attempt + 1
                )
                await self._clock.sleep(retry_delay)

    async def exit_maintenance(self, host: str, *, limit: float) -> None:
        task = await self._start(host, lambda si, h: h.ExitMaintenanceMode_Task(timeout=max(0, int(limit))))
        await self.wait_task(task, limit + 30, f"exit maintenance mode on {host}")

    async def shutdown_host(self, host: str, *, force: bool, limit: float) -> None:
        task = await self._start(host, lambda si, h: h.ShutdownHost_Task(force=force))
        await self.wait_task(task, limit, f"ShutdownHost on {host}")

    async def reboot_host(self, host: str, *, force: bool, limit: float) -> None:
        task = await self._start(host, lambda si, h: h.RebootHost_Task(force=force))
        await self.wait_task(task, limit, f"RebootHost on {host}")

    async def install_patch(self, host: str, depot_urls: Sequence[str], *, limit: float) -> None:
        """HostPatchManager.InstallHostPatchV2_Task with the depot (baseline-managed 7.0 hosts)."""
        urls = list(depot_urls)

        def start(si: Any, h: Any) -> Any:
            spec = vim.host.PatchManager.PatchManagerOperationSpec()  # type: ignore[no-untyped-call]
            return h.configManager.patchManager.InstallHostPatchV2_Task(bundleUrls=urls, spec=spec)

        task = await self._start(host, start)
        await self.wait_task(task, limit, f"patch install on {host}")

    async def vm_power(
        self, host: str, vm_names: Sequence[str], action: str, *, limit: float
    ) -> tuple[str, ...]:
        """``shutdown-guest``, ``power-off`` or ``suspend`` the named powered-on VMs of the host.

        Returns the VMs that refused (a guest shutdown needs VMware Tools; vCenter says so per VM).
        """
        names = set(vm_names)
        if action not in ("shutdown-guest", "power-off", "suspend"):
            raise ActionError(f"unknown VM action {action}")

        def start(si: Any) -> tuple[list[str], list[str]]:
            tasks: list[str] = []
            refused: list[str] = []
            for vm in _find_host(si, host).vm or []:
                if vm.name not in names or str(vm.runtime.powerState) != "poweredOn":
                    continue
                try:
                    if action == "shutdown-guest":
                        vm.ShutdownGuest()
                    elif action == "power-off":
                        tasks.append(str(vm.PowerOffVM_Task()._moId))
                    else:
                        tasks.append(str(vm.SuspendVM_Task()._moId))
                except vmodl.MethodFault as exc:
                    log.info("%s of VM %s on %s refused: %s", action, vm.name, host, _fault_text(exc))
                    refused.append(str(vm.name))
            return tasks, refused

        tasks, refused = cast(tuple[list[str], list[str]], await self._run(start))
        for task in tasks:
            await self.wait_task(task, limit, f"{action} of VMs on {host}")
        return tuple(refused)

    async def wait_vms_off(self, host: str, vm_names: Sequence[str], limit: float) -> tuple[str, ...]:
        """Wait until the named VMs are off; returns those still powered on at the deadline."""
        deadline = self._clock.monotonic() + limit
        while True:
            state = await self.state(host)
            still = tuple(vm.name for vm in state.powered_on_vms if vm.name in vm_names)
            if not still or self._clock.monotonic() >= deadline:
                return still
            await self._clock.sleep(self._poll)

    async def wait_reconnect(self, host: str, *, booted_after: datetime | None, limit: float) -> HostState:
        """Wait until the host is connected and powered on (and booted after ``booted_after``)."""
        deadline = self._clock.monotonic() + limit
        last: HostState | None = None
        while True:
            try:
                last = await self.state(host)
            except ActionError as exc:
                log.info("waiting for %s: %s", host, exc)
            if (
                last is not None
                and last.connection == "connected"
                and last.power == "poweredOn"
                and (booted_after is None or (last.boot_time is not None and last.boot_time > booted_after))
            ):
                return last
            if self._clock.monotonic() >= deadline:
                seen = last.describe() if last else "no answer"
                raise ActionError(f"{host} did not come back within {limit:g} s (last seen: {seen})")
            await self._clock.sleep(self._poll)
