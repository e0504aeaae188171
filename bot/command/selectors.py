"""Argument converters that resolve words against the inventory: one host, or host|cluster|all.

A wrong name never reaches vCenter or a BMC: it fails here with the closest known name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.command.grammar import BadArgument, closest
from bot.inventory.merged import find_host
from bot.model import Host

if TYPE_CHECKING:
    from bot.command.context import Context


@dataclass(frozen=True, slots=True)
class HostArg:
    """Exactly one host of the inventory."""

    metavar: str = "host"

    async def convert(self, ctx: Context, raw: str, param: str) -> Host:
        hosts = ctx.services.inventory.hosts()
        host = find_host(hosts, raw)
        if host is None:
            names = [h.name for h in hosts] + [h.name.split(".", 1)[0] for h in hosts]
            raise BadArgument(
                f"no host `{raw[:60]}` in the inventory.", param=param, suggestion=closest(raw, names)
            )
        return host


@dataclass(frozen=True, slots=True)
class Target:
    """What a host|cluster|all word resolved to."""

    word: str
    kind: str  # host, cluster, all
    hosts: tuple[Host, ...]


@dataclass(frozen=True, slots=True)
class TargetArg:
    metavar: str = "host|cluster|all"

    async def convert(self, ctx: Context, raw: str, param: str) -> Target:
        hosts = tuple(ctx.services.inventory.hosts())
        if raw.lower() == "all":
            return Target(raw, "all", hosts)
        host = find_host(hosts, raw)
        if host is not None:
            return Target(host.name, "host", (host,))
        members = tuple(h for h in hosts if h.cluster and h.cluster.lower() == raw.lower())
        if members:
            return Target(members[0].cluster or raw, "cluster", members)
        clusters = {h.cluster for h in hosts if h.cluster}
        names = [h.name for h in hosts] + [h.name.split(".", 1)[0] for h in hosts] + sorted(clusters)
        raise BadArgument(
            f"no host or cluster `{raw[:60]}` in the inventory.", param=param, suggestion=closest(raw, names)
        )
