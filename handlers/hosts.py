"""``hosts [filter]`` lists the fleet; ``check <host|cluster|all>`` shows status cards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.selectors import Target, TargetArg
from bot.command.spec import command
from bot.messages import Block, Fields, Reply, Style, Table, Text
from bot.model import BootKind, ConnectionState, Host, host_to_dict

CARDS_MAX = 3  # more hosts than this: one table row each instead of a card each


def _state(host: Host) -> str:
    parts = [host.connection_state.value]
    if host.power_state.value != "unknown" and host.power_state.value != "poweredOn":
        parts.append(host.power_state.value)
    if host.in_maintenance:
        parts.append("maintenance")
    if host.bootbank_mounted is False:
        parts.append("BOOTBANK LOST")
    return ", ".join(parts)


def _uptime(boot: datetime | None, now: datetime) -> str:
    if boot is None:
        return "unknown"
    seconds = max(0, int((now - boot).total_seconds()))
    days, rest = divmod(seconds, 86400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


def _matches(host: Host, words: tuple[str, ...]) -> bool:
    fields = [
        host.name,
        host.cluster or "",
        host.release_name or "",
        host.version or "",
        str(host.build or ""),
        host.boot_device.kind.value,
        host.vendor or "",
        host.model or "",
        host.connection_state.value,
        *host.tags,
    ]
    hay = " ".join(fields).lower()
    return all(w.lower() in hay for w in words)


@command(
    "hosts", help="List hosts; words filter by name, cluster, release, boot device, tag", role=Role.VIEWER
)
async def hosts(ctx: Context, *filter_words: str) -> Reply:
    found = [h for h in ctx.services.inventory.hosts() if _matches(h, filter_words)]
    if not found:
        what = f" matching `{' '.join(filter_words)}`" if filter_words else ""
        return Reply.text(f"No hosts{what}.", style=Style.WARNING)
    rows = tuple(
        (
            h.name,
            h.cluster or "-",
            h.version or "?",
            str(h.build or "?"),
            h.release_name or "unknown build",
            h.boot_device.kind.value,
            _state(h),
        )
        for h in found
    )
    columns = ("host", "cluster", "version", "build", "release", "boot", "state")
    summary = f"{len(found)} host{'s' if len(found) != 1 else ''}"
    return Reply(
        summary=summary,
        blocks=(Table(columns, rows, title=summary),),
        data={"hosts": [host_to_dict(h) for h in found]},
    )


def card(host: Host, now: datetime) -> Fields:
    boot = host.boot_device
    items = [
        (
            "Release",
            f"{host.release_name or 'unknown build'} ({host.version or '?'}, build {host.build or '?'})",
        ),
        (
            "Boot device",
            boot.describe() + (f" — {boot.reason}" if boot.kind == BootKind.UNKNOWN and boot.reason else ""),
        ),
        ("Bootbank", {True: "mounted", False: "NOT MOUNTED", None: "unknown"}[host.bootbank_mounted]),
        ("Hardware", " ".join(p for p in (host.vendor, host.model) if p) or "unknown"),
        ("State", _state(host) + f", overall {host.overall_status}" if host.overall_status else _state(host)),
        ("Uptime", _uptime(host.boot_time, now)),
        ("Location", " / ".join(p for p in (host.vcenter, host.datacenter, host.cluster) if p) or "-"),
    ]
    if host.serial:
        items.append(("Serial", host.serial))
    if host.tags:
        items.append(("Tags", ", ".join(sorted(host.tags))))
    items.extend(("Config issue", issue) for issue in host.config_issues)
    return Fields(tuple(items), title=host.name)


def _warnings(host: Host) -> list[Block]:
    out: list[Block] = []
    if host.bootbank_mounted is False:
        out.append(
            Text(
                f"{host.name} has lost its bootbank: configuration changes are not saved and a "
                "reboot may not come back. Plan a shutdown or reboot.",
                Style.ERROR,
            )
        )
    elif host.connection_state in (ConnectionState.NOT_RESPONDING, ConnectionState.DISCONNECTED):
        out.append(Text(f"{host.name} is {host.connection_state.value} in vCenter.", Style.ERROR))
    if host.boot_device.kind.is_flash_media:
        out.append(
            Text(
                f"{host.name} boots from {host.boot_device.kind.value.upper()} media, which is prone "
                "to bootbank loss on ESXi 7.0; persistent boot storage is recommended.",
                Style.WARNING,
            )
        )
    return out


@command(
    "check",
    help="Status card of a host, a cluster, or all hosts; `--all` lists the fixes that only might matter too",
    role=Role.VIEWER,
)
async def check(ctx: Context, target: Annotated[Target, TargetArg()], *, all: bool = False) -> Reply:
    services = ctx.services
    now = services.clock.now()
    blocks: list[Block] = []
    for fresh in services.inventory.freshness():
        if fresh.stale:
            age = (
                f"{int((now - fresh.refreshed_at).total_seconds())}s old"
                if fresh.refreshed_at
                else "no data yet"
            )
            blocks.append(
                Text(
                    f"Inventory from {fresh.source} is stale ({age}): {fresh.error or 'unreachable'}",
                    Style.WARNING,
                )
            )
    chosen = target.hosts
    if len(chosen) <= CARDS_MAX:
        for host in chosen:
            blocks.append(card(host, now))
            blocks.extend(_warnings(host))
            for notes in services.host_notes:
                blocks.extend(await notes(host, expand=all))
    else:
        problems = [h for h in chosen if _warnings(h)]
        rows = tuple(
            (
                h.name,
                h.release_name or "?",
                h.boot_device.kind.value,
                _state(h),
                "attention" if h in problems else "ok",
            )
            for h in chosen
        )
        title = f"{target.kind} {target.word}: {len(chosen)} hosts, {len(problems)} need attention"
        blocks.append(Table(("host", "release", "boot", "state", "status"), rows, title=title))
    first = chosen[0]
    summary = (
        f"{first.name}: {first.release_name or 'unknown build'} build {first.build or '?'}, "
        f"boots from {first.boot_device.kind.value}, {_state(first)}"
        if len(chosen) == 1
        else f"{target.kind} {target.word}: {len(chosen)} hosts"
    )
    data: dict[str, object] = {
        "target": target.word,
        "kind": target.kind,
        "hosts": [host_to_dict(h) for h in chosen],
    }
    if len(chosen) == 1:
        data["host"] = host_to_dict(first)
    return Reply(summary=summary, blocks=tuple(blocks), data=data)
