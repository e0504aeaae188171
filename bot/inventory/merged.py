"""The read side every command uses to find hosts, whatever feeds it (static file, demo, vCenter).

Lookups are case-insensitive and accept the short name of an FQDN (``esx01`` for
``esx01.lab.local``) when that is unambiguous. ``freshness()`` says how old the data is, so ``check``
can warn when vCenter is unreachable and the answer comes from the last snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot.model import Host


@dataclass(frozen=True, slots=True)
class Freshness:
    source: str  # "static:/path/inventory.yaml", "vcenter:vc1", "demo"
    refreshed_at: datetime | None
    stale: bool = False
    error: str | None = None


class Inventory(Protocol):
    def hosts(self) -> Sequence[Host]: ...

    def freshness(self) -> Sequence[Freshness]: ...


def find_host(hosts: Sequence[Host], name: str) -> Host | None:
    wanted = name.strip().lower()
    exact = [h for h in hosts if h.name.lower() == wanted]
    if exact:
        return exact[0]
    short = [h for h in hosts if h.name.lower().split(".", 1)[0] == wanted]
    return short[0] if len(short) == 1 else None


class StaticInventory:
    """A fixed list of hosts (static file or demo data)."""

    def __init__(self, hosts: Sequence[Host], source: str, loaded_at: datetime) -> None:
        self._hosts = tuple(sorted(hosts, key=lambda h: h.name.lower()))
        self._freshness = Freshness(source=source, refreshed_at=loaded_at)

    def hosts(self) -> Sequence[Host]:
        return self._hosts

    def freshness(self) -> Sequence[Freshness]:
        return (self._freshness,)


class MergedInventory:
    """Live sources first; the static file fills in what the API cannot know and adds hosts.

    A static entry for a host that vCenter also reports contributes tags, a boot-device override
    (when vCenter's is unknown or the file says so explicitly), address and the features vCenter
    cannot tell (RDM); vCenter wins for facts it measures (build, states, features it reports).
    """

    def __init__(self, live: Sequence[Inventory], static: Inventory | None) -> None:
        self._live = tuple(live)
        self._static = static

    def hosts(self) -> Sequence[Host]:
        merged: dict[str, Host] = {}
        for inv in self._live:
            for host in inv.hosts():
                merged.setdefault(host.name.lower(), host)
        if self._static is not None:
            for host in self._static.hosts():
                key = host.name.lower()
                live = merged.get(key) or merged.get(key.split(".", 1)[0])
                if live is None:
                    merged[key] = host
                    continue
                override = host.extra.get("boot_device_override") is True
                boot = host.boot_device if override or live.boot_device.kind == "unknown" else None
                merged[live.name.lower()] = replace(
                    live,
                    tags=live.tags | host.tags,
                    address=live.address or host.address,
                    boot_device=boot or live.boot_device,
                    extra={**host.extra, **live.extra},
                    features={**host.features, **live.features},
                )
        return tuple(sorted(merged.values(), key=lambda h: h.name.lower()))

    def freshness(self) -> Sequence[Freshness]:
        out = [f for inv in self._live for f in inv.freshness()]
        if self._static is not None:
            out.extend(self._static.freshness())
        return tuple(out)
