"""``DemoHostOps``: the ``HostOps`` protocol over the simulated fleet, with vSphere's rules and pace.

What vCenter refuses, this refuses too (reboot or shutdown without ``force`` outside maintenance
mode, an install outside maintenance mode, a host that does not respond); each operation takes a
step time or a few, so progress cards have something to show. The job runner, the pre-checks and
the power steps use it exactly as they use ``bot.vsphere.host_actions.HostActions``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock, from_epoch
from bot.demo.fleet import DemoFleet, SimHost
from bot.vsphere.host_ops import ActionError, HostState, VmState

log = logging.getLogger(__name__)

DEPOT_BUILD = re.compile(r"/(\d{7,9})(?:/|-|$)")


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    drs_enabled: bool
    drs_behavior: str
    ha_admission_control: bool
    vsan_enabled: bool


CLUSTERS = {
    "homelab": ClusterFacts(True, "fullyAutomated", False, False),
    "powerflex-prod": ClusterFacts(True, "partiallyAutomated", False, False),
    "prod-c1": ClusterFacts(True, "fullyAutomated", True, False),
    "prod-c2": ClusterFacts(True, "fullyAutomated", False, True),
}


class DemoHostOps:
    """Host operations on the simulated fleet; ``step`` is the seconds one simulated step takes."""

    def __init__(self, fleet: DemoFleet, clock: Clock, *, step: float) -> None:
        self._fleet = fleet
        self._clock = clock
        self._step = step
        self._poll = max(0.05, min(step / 4, 0.5))

    def _host(self, name: str, *, responding: bool = True) -> SimHost:
        sim = self._fleet.host(name)
        if sim is None:
            raise ActionError(f"vCenter has no host named {name}")
        if responding and sim.connection != "connected":
            raise ActionError(f"{sim.name} is {sim.connection}: vCenter cannot reach it")
        return sim

    async def _take(self, seconds: float, limit: float, what: str) -> None:
        """A task that needs ``seconds``; past ``limit`` it fails as a vCenter task wait does."""
        if seconds <= limit:
            await self._clock.sleep(seconds)
            return
        await self._clock.sleep(limit)
        raise ActionError(f"{what} did not finish within {limit:g} s")

    async def state(self, host: str) -> HostState:
        sim = self._host(host, responding=False)
        facts = CLUSTERS.get(sim.cluster or "")
        peers = [h for h in self._fleet.state.hosts.values() if h.cluster and h.cluster == sim.cluster]
        return HostState(
            name=sim.name,
            connection=sim.connection,
            power=sim.power if sim.connection == "connected" else "unknown",
            in_maintenance=sim.maintenance,
            version=None,
            build=sim.build,
            boot_time=from_epoch(sim.boot_time) if sim.boot_time else None,
            bootbank_mounted=sim.bootbank if sim.connection == "connected" else None,
            reboot_required=sim.staged is not None,
            vms=tuple(VmState(vm.name, vm.power, vm.tools) for vm in self._fleet.vms_on(sim.name)),
            cluster=sim.cluster,
            drs_enabled=facts.drs_enabled if facts else None,
            drs_behavior=facts.drs_behavior if facts else None,
            ha_admission_control=facts.ha_admission_control if facts else None,
            vsan_enabled=facts.vsan_enabled if facts else None,
            cluster_hosts_in_maintenance=tuple(h.name for h in peers if h.maintenance and h is not sim),
            cluster_size=len(peers) or None,
        )

    async def enter_maintenance(
        self,
        host: str,
        *,
        limit: float,
        evacuate_powered_off: bool = False,
        retries: int = 0,
        retry_delay: float = 5.0,
    ) -> None:
        sim = self._host(host)
        if sim.maintenance:
            return
        moving = [
            vm for vm in self._fleet.vms_on(sim.name) if vm.power != "poweredOff" or evacuate_powered_off
        ]
        targets = [
            h
            for h in self._fleet.state.hosts.values()
            if h.cluster == sim.cluster and h is not sim and h.connection == "connected" and not h.maintenance
        ]
        facts = CLUSTERS.get(sim.cluster or "")
        powered_on = [vm for vm in moving if vm.power != "poweredOff"]
        if powered_on and not (facts and facts.drs_behavior == "fullyAutomated"):
            raise ActionError(
                f"EnterMaintenanceMode on {sim.name} timed out: DRS does not move "
                f"{len(powered_on)} powered-on VM(s) by itself"
            )
        if moving and not targets:
            raise ActionError(f"no other host of {sim.cluster} can take the VMs of {sim.name}")
        await self._take(2 * self._step, limit, f"EnterMaintenanceMode on {sim.name}")
        for i, vm in enumerate(moving):
            vm.host = targets[i % len(targets)].name  # DRS spreads them over the cluster
        sim.maintenance = True
        self._fleet.save()
        log.info("demo: %s in maintenance mode, %d VM(s) moved", sim.name, len(moving))

    async def exit_maintenance(self, host: str, *, limit: float) -> None:
        sim = self._host(host)
        await self._take(self._step, limit, f"ExitMaintenanceMode on {sim.name}")
        sim.maintenance = False
        self._fleet.save()

    def _stop_host(self, sim: SimHost, force: bool, what: str) -> None:
        if not force and not sim.maintenance:
            raise ActionError(f"{what} {sim.name}: the host is not in maintenance mode (InvalidState)")
        for vm in self._fleet.vms_on(sim.name):
            vm.power, vm.off_at = "poweredOff", None

    async def shutdown_host(self, host: str, *, force: bool, limit: float) -> None:
        sim = self._host(host)
        self._stop_host(sim, force, "ShutdownHost")
        self._fleet.schedule(sim, "off", self._step)

    async def reboot_host(self, host: str, *, force: bool, limit: float) -> None:
        sim = self._host(host)
        self._stop_host(sim, force, "RebootHost")
        self._fleet.schedule(sim, "boot", 2 * self._step)

    async def install_patch(self, host: str, depot_urls: Sequence[str], *, limit: float) -> None:
        sim = self._host(host)
        if not sim.maintenance:
            raise ActionError(f"InstallHostPatchV2 on {sim.name}: the host is not in maintenance mode")
        found = [m for url in depot_urls if (m := DEPOT_BUILD.search(url))]
        if not found:
            raise ActionError(f"the demo depot has no build in {', '.join(depot_urls) or 'no URL'}")
        await self._take(2 * self._step, limit, f"InstallHostPatchV2 on {sim.name}")
        sim.staged = int(found[0].group(1))
        self._fleet.save()
        log.info("demo: %s staged build %d (applied at the next boot)", sim.name, sim.staged)

    async def vm_power(
        self, host: str, vm_names: Sequence[str], action: str, *, limit: float
    ) -> tuple[str, ...]:
        sim = self._host(host)
        vms = {vm.name: vm for vm in self._fleet.vms_on(sim.name)}
        refused = []
        for name in vm_names:
            vm = vms.get(name)
            if vm is None or vm.power == "poweredOff":
                continue
            if action == "shutdown-guest":
                if vm.tools:
                    vm.off_at = self._fleet.now() + self._step  # the guest takes its time
                else:
                    refused.append(name)  # ToolsUnavailable
            elif action == "power-off":
                vm.power = "poweredOff"
            elif action == "suspend":
                vm.power = "suspended"
            else:
                raise ActionError(f"unknown VM action {action}")
        self._fleet.save()
        return tuple(refused)

    async def wait_vms_off(self, host: str, vm_names: Sequence[str], limit: float) -> tuple[str, ...]:
        start = self._clock.monotonic()
        wanted = set(vm_names)
        while True:
            self._fleet.settle()
            still = tuple(
                vm.name for vm in self._fleet.state.vms if vm.name in wanted and vm.power != "poweredOff"
            )
            if not still or self._clock.monotonic() - start >= limit:
                return still
            await self._clock.sleep(self._poll)

    async def wait_reconnect(self, host: str, *, booted_after: datetime | None, limit: float) -> HostState:
        start = self._clock.monotonic()
        while True:
            state = await self.state(host)
            back = state.connection == "connected"
            if back and (booted_after is None or (state.boot_time and state.boot_time > booted_after)):
                return state
            if self._clock.monotonic() - start >= limit:
                seen = state.connection if not back else "connected, not rebooted"
                raise ActionError(f"{host} did not come back within {limit:g} s (last seen: {seen})")
            await self._clock.sleep(self._poll)
