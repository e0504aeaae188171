"""The simulated fleet: each demo host's power, connection, maintenance mode, build, bootbank and VMs.

State changes that take time (a reboot, a graceful shutdown, a guest OS shutting down) are stored as
"done at" instants and settled whenever the state is read, so they need no background task, survive
a restart of the bot and follow an injected clock. The state is saved as JSON next to the database
after every change; a missing or unreadable file starts the bundled fleet again (with a log line).

The fleet is also the demo's ``Inventory``: ``hosts()`` is the bundled demo inventory with every
simulated fact laid over it, so ``hosts`` and ``check`` show what the operations did.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.builds import BuildCatalog
from bot.clock import Clock, from_epoch
from bot.inventory.merged import Freshness, find_host
from bot.model import ConnectionState, Host, PowerState

log = logging.getLogger(__name__)

BOOTBANK_LOST = (
    "Lost connectivity to the device {device} backing the boot filesystem /vmfs/devices/disks/{device}. "
    "As a result, host configuration changes will not be saved to persistent storage."
)
# Demo VM names per host, so `job` and the step results read like a real home lab.
VM_NAMES = ("dc01", "files", "plex", "pihole", "gitlab", "backup", "vcsa", "grafana", "mail", "wiki")


@dataclass
class SimVm:
    name: str
    host: str
    power: str = "poweredOn"  # poweredOn, poweredOff, suspended
    tools: bool = True  # VMware Tools running: the guest can shut itself down
    off_at: float | None = None  # a guest shutdown in progress ends then


@dataclass
class SimHost:
    name: str
    cluster: str | None
    build: int
    connection: str  # connected, notResponding
    power: str  # poweredOn, poweredOff
    maintenance: bool
    bootbank: bool
    boot_time: float
    hung: bool = False  # the OS ignores an ACPI (graceful) shutdown: a host that lost its boot device
    staged: int | None = None  # a build installed and applied at the next boot
    going: str | None = None  # "boot" (comes back connected) or "off", done at ``until``
    until: float | None = None


@dataclass
class FleetState:
    hosts: dict[str, SimHost] = field(default_factory=dict)
    vms: list[SimVm] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"hosts": [asdict(h) for h in self.hosts.values()], "vms": [asdict(v) for v in self.vms]}

    @classmethod
    def from_json(cls, data: Any) -> FleetState:
        """KeyError/TypeError/ValueError on a wrong shape; the caller falls back to the bundled fleet."""
        hosts = {str(h["name"]): SimHost(**h) for h in data["hosts"]}
        vms = [SimVm(**v) for v in data["vms"]]
        if any(vm.host not in hosts for vm in vms):
            raise ValueError("a VM sits on an unknown host")
        return cls(hosts, vms)


def initial_state(base: Sequence[Host]) -> FleetState:
    """The bundled fleet as the demo starts it: each host's VMs named, the last one without Tools."""
    state = FleetState()
    for host in base:
        lost = host.bootbank_mounted is False
        responding = host.connection_state is not ConnectionState.NOT_RESPONDING
        state.hosts[host.name] = SimHost(
            name=host.name,
            cluster=host.cluster,
            build=host.build or 0,
            connection="connected" if responding else "notResponding",
            power="poweredOff" if host.power_state is PowerState.POWERED_OFF else "poweredOn",
            maintenance=bool(host.in_maintenance),
            bootbank=not lost,
            boot_time=host.boot_time.timestamp() if host.boot_time else 0.0,
            hung=lost and not responding,
        )
        short = host.name.split(".", 1)[0]
        count = host.vm_count or 0
        for i in range(count):
            lap = i // len(VM_NAMES)
            name = f"{short}-{VM_NAMES[i % len(VM_NAMES)]}{lap + 1 if lap else ''}"
            state.vms.append(SimVm(name, host.name, tools=i < count - 1))
    return state


class DemoFleet:
    """The simulated hosts, as an ``Inventory`` and as the state ``DemoHostOps`` acts on."""

    def __init__(self, base: Sequence[Host], catalog: BuildCatalog, clock: Clock, state_file: Path) -> None:
        self._base = {h.name: h for h in base}
        self._catalog = catalog
        self._clock = clock
        self._file = state_file
        self.state = self._load()

    # --- persistence --------------------------------------------------------------------------

    def _load(self) -> FleetState:
        try:
            raw = self._file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return initial_state(list(self._base.values()))
        except OSError as exc:
            log.warning("demo fleet: cannot read %s (%s); starting the bundled fleet", self._file, exc)
            return initial_state(list(self._base.values()))
        try:
            state = FleetState.from_json(json.loads(raw))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "demo fleet: %s is not a saved fleet (%s); starting the bundled fleet", self._file, exc
            )
            return initial_state(list(self._base.values()))
        if set(state.hosts) != set(self._base):
            log.warning("demo fleet: %s names other hosts; starting the bundled fleet", self._file)
            return initial_state(list(self._base.values()))
        return state

    def save(self) -> None:
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state.to_json(), indent=1), encoding="utf-8")
            os.replace(tmp, self._file)
        except OSError as exc:
            log.warning("demo fleet: cannot save %s (%s); the state lives in memory only", self._file, exc)

    def reset(self) -> None:
        self.state = initial_state(list(self._base.values()))
        self.save()

    # --- reading --------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock.now().timestamp()

    def host(self, name: str) -> SimHost | None:
        """The simulated host by full or short name, settled to now."""
        base = find_host(list(self._base.values()), name)
        if base is None:
            return None
        self.settle()
        return self.state.hosts[base.name]

    def serial(self, name: str) -> str:
        """The host's serial number (what its BMC reports), made up for hosts the inventory gives none."""
        return self._base[name].serial or f"DEMO-{name.split('.', 1)[0].upper()}"

    def vms_on(self, host: str) -> list[SimVm]:
        return [vm for vm in self.state.vms if vm.host == host]

    def settle(self) -> None:
        """Finish every timed change that is due (boots, shutdowns, guest shutdowns)."""
        now = self.now()
        changed = False
        for vm in self.state.vms:
            if vm.off_at is not None and vm.off_at <= now:
                vm.power, vm.off_at, changed = "poweredOff", None, True
        for sim in self.state.hosts.values():
            if sim.going is None or sim.until is None or sim.until > now:
                continue
            if sim.going == "boot":
                sim.connection, sim.power, sim.boot_time = "connected", "poweredOn", sim.until
                sim.bootbank, sim.hung = True, False  # a fresh boot finds its USB device again
                if sim.staged is not None:
                    sim.build, sim.staged = sim.staged, None
            else:
                self.power_off(sim)
            sim.going, sim.until, changed = None, None, True
        if changed:
            self.save()

    def power_off(self, sim: SimHost) -> None:
        sim.connection, sim.power, sim.going, sim.until = "notResponding", "poweredOff", None, None
        for vm in self.vms_on(sim.name):
            vm.power, vm.off_at = "poweredOff", None

    def schedule(self, sim: SimHost, going: str, after: float) -> None:
        sim.going, sim.until = going, self.now() + after
        if going == "boot":
            sim.connection = "notResponding"  # vCenter loses the host while it boots
        self.save()

    # --- Inventory ------------------------------------------------------------------------------

    def hosts(self) -> Sequence[Host]:
        self.settle()
        out = []
        for name, base in sorted(self._base.items(), key=lambda item: item[0].lower()):
            sim = self.state.hosts[name]
            known = self._catalog.lookup(sim.build)
            issues = () if sim.bootbank else (BOOTBANK_LOST.format(device=base.boot_device.device),)
            status = "red" if sim.connection != "connected" else ("green" if sim.bootbank else "yellow")
            out.append(
                replace(
                    base,
                    build=sim.build,
                    version=known.version if known else base.version,
                    release_name=known.name if known else None,
                    bootbank_mounted=sim.bootbank,
                    connection_state=ConnectionState(sim.connection),
                    power_state=PowerState(sim.power),
                    in_maintenance=sim.maintenance,
                    boot_time=from_epoch(sim.boot_time) if sim.boot_time else None,
                    overall_status=status,
                    config_issues=issues,
                    vm_count=len(self.vms_on(name)),
                    source="demo",
                )
            )
        return tuple(out)

    def freshness(self) -> Sequence[Freshness]:
        return (Freshness(source="demo (simulated fleet)", refreshed_at=self._clock.now()),)
