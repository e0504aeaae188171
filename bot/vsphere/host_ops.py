"""What host actions need from vCenter, without pyVmomi: the ``HostOps`` protocol, ``HostState``.

``bot.vsphere.host_actions.HostActions`` implements ``HostOps``; the job runner, the pre-checks and the
handlers see only this module, so none of them imports pyVmomi (see the import-linter contracts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ActionError(Exception):
    """A vCenter operation failed or timed out; ``str()`` is fit for chat."""


@dataclass(frozen=True, slots=True)
class VmState:
    name: str
    power: str  # poweredOn, poweredOff, suspended
    tools_running: bool


@dataclass(frozen=True, slots=True)
class HostState:
    """What vCenter says about one host right now, with the cluster facts the pre-checks need."""

    name: str
    connection: str  # connected, notResponding, disconnected
    power: str  # poweredOn, poweredOff, standBy, unknown
    in_maintenance: bool
    version: str | None
    build: int | None
    boot_time: datetime | None
    bootbank_mounted: bool | None
    reboot_required: bool | None
    vms: tuple[VmState, ...] = ()
    cluster: str | None = None
    drs_enabled: bool | None = None
    drs_behavior: str | None = None  # manual, partiallyAutomated, fullyAutomated
    ha_admission_control: bool | None = None
    vsan_enabled: bool | None = None
    cluster_hosts_in_maintenance: tuple[str, ...] = ()
    cluster_size: int | None = None  # hosts in the cluster, this one included

    @property
    def powered_on_vms(self) -> tuple[VmState, ...]:
        return tuple(vm for vm in self.vms if vm.power == "poweredOn")

    def describe(self) -> str:
        mm = "in maintenance mode" if self.in_maintenance else "not in maintenance mode"
        build = f"build {self.build}" if self.build else "build unknown"
        return f"{self.connection}, power {self.power}, {mm}, {build}"


class HostOps(Protocol):
    """Host operations on one vCenter, addressed by host name; failures raise ``ActionError``."""

    async def state(self, host: str) -> HostState: ...

    async def enter_maintenance(
        self,
        host: str,
        *,
        limit: float,
        evacuate_powered_off: bool = False,
        retries: int = 0,
        retry_delay: float = 5.0,
    ) -> None: ...

    async def exit_maintenance(self, host: str, *, limit: float) -> None: ...

    async def shutdown_host(self, host: str, *, force: bool, limit: float) -> None: ...

    async def reboot_host(self, host: str, *, force: bool, limit: float) -> None: ...

    async def install_patch(self, host: str, depot_urls: Sequence[str], *, limit: float) -> None: ...

    async def vm_power(
        self, host: str, vm_names: Sequence[str], action: str, *, limit: float
    ) -> tuple[str, ...]: ...

    async def wait_vms_off(self, host: str, vm_names: Sequence[str], limit: float) -> tuple[str, ...]: ...

    async def wait_reconnect(
        self, host: str, *, booted_after: datetime | None, limit: float
    ) -> HostState: ...


class ClusterImageOps(Protocol):
    """vLCM on one vCenter: set the cluster image to a build and remediate the named hosts."""

    async def remediate(
        self,
        cluster: str,
        hosts: Sequence[str],
        *,
        build: int,
        limit: float,
        progress: Callable[[str], Awaitable[None]],
    ) -> str: ...
