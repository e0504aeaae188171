"""``JobSettings``: timeouts, VM policy, patch methods per cluster and esxcli access for host-action jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.actions.esxcli import EsxcliSettings

METHODS = ("patch-manager", "vlcm", "esxcli")


@dataclass(frozen=True, slots=True)
class JobSettings:
    """Timeouts (seconds) and policies; ``depot_url`` may use {version}, {build} and {name}.

    ``methods`` maps a cluster name to how its hosts are patched (``vlcm``, ``patch-manager``,
    ``esxcli``; default ``patch-manager``); ``max_parallel`` bounds ``patch --parallel N``.
    """

    depot_url: str = ""
    vm_policy: str = "power-off"  # after guest shutdown: power-off | leave | abort
    guest_timeout: float = 300.0
    maintenance_timeout: float = 900.0
    maintenance_retries: int = 2
    maintenance_retry_delay: float = 30.0
    task_timeout: float = 1800.0
    reconnect_timeout: float = 1800.0
    vlcm_timeout: float = 14400.0
    bmc_graceful_timeout: float = 300.0
    bmc_force_timeout: float = 120.0
    bmc_poll: float = 2.0
    max_parallel: int = 4
    methods: Mapping[str, str] = field(default_factory=dict)
    esxcli: EsxcliSettings | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> JobSettings:
        known: dict[str, Any] = {k: data[k] for k in cls.__slots__ if k in data}
        if known.get("vm_policy", "power-off") not in ("power-off", "leave", "abort"):
            raise ValueError("jobs.vm_policy must be power-off, leave or abort")
        methods = {str(k): str(v) for k, v in (data.get("methods") or {}).items()}
        bad = sorted({m for m in methods.values() if m not in METHODS})
        if bad:
            raise ValueError(f"jobs.methods: unknown method {bad[0]!r} (use {', '.join(METHODS)})")
        known["methods"] = methods
        if not 1 <= int(known.get("max_parallel", 4)) <= 32:
            raise ValueError("jobs.max_parallel must be between 1 and 32")
        if data.get("esxcli") is not None:
            known["esxcli"] = EsxcliSettings.from_mapping(data["esxcli"])
        return cls(**known)

    def method_for(self, cluster: str | None) -> str:
        return self.methods.get(cluster or "", "patch-manager")
