"""``JobSettings``: timeouts, VM policy, patch methods per cluster and esxcli access for host-action jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from bot.actions.esxcli import EsxcliSettings
from bot.schema import Range, Seconds, parse

Method = Literal["patch-manager", "vlcm", "esxcli"]
METHODS = ("patch-manager", "vlcm", "esxcli")


@dataclass(frozen=True, slots=True)
class JobSettings:
    """Timeouts (``30s``/``5m``/``1h`` or seconds) and policies; ``depot_url`` may use {version}, {build}
    and {name}.

    ``methods`` maps a cluster name to how its hosts are patched (``vlcm``, ``patch-manager``,
    ``esxcli``; default ``patch-manager``); ``max_parallel`` bounds ``patch --parallel N``.
    """

    depot_url: str = ""
    vm_policy: Literal["power-off", "leave", "abort"] = "power-off"  # after guest shutdown
    guest_timeout: Seconds = 300.0
    maintenance_timeout: Seconds = 900.0
    maintenance_retries: Annotated[int, Range(0, 100)] = 2
    maintenance_retry_delay: Seconds = 30.0
    task_timeout: Seconds = 1800.0
    reconnect_timeout: Seconds = 1800.0
    vlcm_timeout: Seconds = 14400.0
    bmc_graceful_timeout: Seconds = 300.0
    bmc_force_timeout: Seconds = 120.0
    bmc_poll: Seconds = 2.0
    max_parallel: Annotated[int, Range(1, 32)] = 4
    methods: Mapping[str, Method] = field(default_factory=dict)
    esxcli: EsxcliSettings | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> JobSettings:
        """The ``jobs`` section; ``ConfigError`` names the key."""
        return parse(cls, data, "jobs")

    def method_for(self, cluster: str | None) -> str:
        return self.methods.get(cluster or "", "patch-manager")
