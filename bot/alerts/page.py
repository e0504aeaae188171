"""What an alert says: the kinds we know (severity, inhibition, advice) and the page, note and pager texts.

Pure functions from an alert row, the host facts and the people to mention to a ``Reply``; the engine
decides when to send them. A page says what is known (boot device, build, release, the signals seen)
and what to do (the fixing release when the matcher knows one, the workarounds, ack and shutdown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerts.oncall import mention
from bot.clock import from_epoch
from bot.messages import Actions, Block, Button, Fields, Reply, Style, Text
from bot.model import AlertState, Host, Severity
from bot.store.alert_records import AlertRecord

FixHint = Callable[[Host], "str | None"]

_PERSISTENT = (
    "Lasting fix: move the boot device to persistent storage (local disk, SSD, M.2 or a boot LUN); "
    "USB and SD boot are deprecated for ESXi 7.0 and later."
)


@dataclass(frozen=True, slots=True)
class KindSpec:
    """An alert kind: default severity, its headline, what to do, and which kinds mute or clear it."""

    name: str
    severity: Severity
    headline: str  # completes "<host> …"
    advice: tuple[str, ...]
    inhibited_by: tuple[str, ...] = ()
    clears: tuple[str, ...] = ()  # when this kind clears, these clear with it
    upgrade_helps: bool = True
    about_host: bool = True  # False: the subject is not an inventory host (no host facts, no shutdown)


KINDS: Mapping[str, KindSpec] = {
    k.name: k
    for k in (
        KindSpec(
            "bootbank-loss",
            Severity.CRITICAL,
            "lost its bootbank (/bootbank cannot be found)",
            (
                "The host runs from memory: configuration changes are not saved and it may not boot "
                "again. Move its VMs away, then shut it down gracefully or reboot it; after the reboot "
                "check that /bootbank is mounted.",
                "Until then keep I/O off the boot device (scratch and the VMware Tools repository on "
                "other storage, /UserVars/ToolsRamdisk = 1).",
                _PERSISTENT,
            ),
            clears=("boot-device-precursor", "boot-device-corruption"),
        ),
        KindSpec(
            "boot-device-precursor",
            Severity.WARNING,
            "shows trouble on its boot device (a bootbank-loss precursor)",
            (
                "Commands to the boot device time out or its path state is in doubt: ESXi 7.0 hosts in "
                "this state often lose /bootbank within hours. Plan a maintenance window now.",
                _PERSISTENT,
            ),
            inhibited_by=("bootbank-loss",),
        ),
        KindSpec(
            "boot-device-corruption",
            Severity.CRITICAL,
            "reports a corrupt boot filesystem",
            ("Do not reboot before a backup of the host configuration exists.", _PERSISTENT),
            inhibited_by=("bootbank-loss",),
        ),
        KindSpec(
            "host-not-responding",
            Severity.CRITICAL,
            "is not responding to vCenter",
            (
                "Check the management network and the host's console through its BMC; if the boot "
                "device is gone, a graceful shutdown from the BMC is the safe way out.",
            ),
            inhibited_by=("bootbank-loss",),
            upgrade_helps=False,
        ),
        KindSpec(  # raised by bot/advisories for an advisory (its id stands where a host name would)
            "exploited-vulnerability",
            Severity.CRITICAL,
            "has a CVE exploited in the wild, and hosts are vulnerable to it",
            (
                "Patch the vulnerable hosts today: `vmsa <advisory>` names them and the fixed builds; "
                "until then apply the advisory's workaround where there is one.",
            ),
            upgrade_helps=False,
            about_host=False,
        ),
    )
}


def kind_spec(kind: str) -> KindSpec:
    """The known kind, or a generic one for kinds a rule or a user invented."""
    return KINDS.get(kind) or KindSpec(kind, Severity.WARNING, f"raised {kind}", (), upgrade_helps=False)


def people_of(levels: Sequence[Mapping[str, Any]], indices: Sequence[int]) -> list[Mapping[str, Any]]:
    seen: dict[str, Mapping[str, Any]] = {}
    for i in indices:
        if 0 <= i < len(levels):
            for person in levels[i].get("people", ()):
                seen.setdefault(str(person.get("name")), person)
    return list(seen.values())


def mentions(people: Sequence[Mapping[str, Any]], platform: str) -> str:
    return " ".join(mention(platform, p.get("ids", {}), str(p.get("name"))) for p in people)


def notify_ids(people: Sequence[Mapping[str, Any]], platform: str) -> tuple[str, ...]:
    """The user ids a message on ``platform`` means to ping (``Reply.notify``)."""
    ids = (p.get("ids") for p in people)
    return tuple(f"{platform}:{i[platform]}" for i in ids if isinstance(i, Mapping) and i.get(platform))


def _age(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    if seconds < 3600:
        return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _time(epoch: float) -> str:
    return from_epoch(epoch).strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_json(rec: AlertRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "host": rec.host,
        "kind": rec.kind,
        "state": rec.state.value,
        "severity": rec.severity.value,
        "summary": rec.summary,
        "first_seen": _time(rec.first_seen),
        "last_seen": _time(rec.last_seen),
        "sources": list(rec.sources),
        "signals": rec.signal_count,
        "escalation_step": rec.escalation_step,
        "muted": rec.muted,
        "acked_by": rec.acked_by,
        "resolved_by": rec.resolved_by,
    }


def fix_text(host: Host | None, spec: KindSpec, fix_hint: FixHint | None) -> str:
    if not spec.upgrade_helps:
        return ""
    hint = fix_hint(host) if fix_hint is not None and host is not None else None
    if hint:
        return f"Fixed in a newer release: {hint}. Upgrade when the host is back."
    return "No newer release known to esxbot fixes this on this host; the workarounds below apply."


def _facts(rec: AlertRecord, host: Host | None) -> Fields:
    about_host = kind_spec(rec.kind).about_host
    items: list[tuple[str, str]] = [
        ("Host" if about_host else "About", rec.host),
        ("Severity", rec.severity.value),
    ]
    if host is None and about_host:
        items.append(("Inventory", "not in the inventory: boot device and build unknown"))
    elif host is not None:
        items.append(("Boot device", host.boot_device.describe()))
        release = host.release_name or "unknown release"
        items.append(("Release", f"{release} (version {host.version or '?'}, build {host.build or '?'})"))
        if host.vendor or host.model:
            items.append(("Hardware", " ".join(p for p in (host.vendor, host.model) if p)))
    if rec.device and (host is None or rec.device != host.boot_device.device):
        items.append(("Device", rec.device))
    items.append(("First seen", _time(rec.first_seen)))
    items.append(("Signals", f"{rec.signal_count}, last {_time(rec.last_seen)}"))
    if rec.sources:
        items.append(("Sources", ", ".join(rec.sources[-5:])))
    if rec.detail:
        items.append(("Last signal", rec.detail[:400]))
    return Fields(tuple(items), title=f"Alert #{rec.id}: {rec.kind}")


def headline(rec: AlertRecord) -> str:
    return f"{rec.host} {kind_spec(rec.kind).headline}"


def page(
    rec: AlertRecord,
    host: Host | None,
    platform: str,
    *,
    now: datetime,
    paging: Sequence[Mapping[str, Any]],
    fix_hint: FixHint | None,
) -> Reply:
    """The page, in the state ``rec`` is in; edits of the page are this same function later."""
    spec = kind_spec(rec.kind)
    state_line, style = _state_line(rec, now)
    who = mentions(paging, platform) if rec.state is AlertState.FIRING else ""
    blocks: list[Block] = [Text(f"{state_line}: {headline(rec)} (alert #{rec.id})", style)]
    if who:
        blocks.append(Text(f"Paging {who}"))
    blocks.append(_facts(rec, host))
    fix = fix_text(host, spec, fix_hint)
    if fix:
        blocks.append(Text(fix, Style.WARNING))
    if rec.state is not AlertState.RESOLVED:
        blocks.extend(Text(f"What to do: {line}") for line in spec.advice[:1])
        blocks.extend(Text(line) for line in spec.advice[1:])
        buttons = (
            [Button("Shut down gracefully", f"shutdown {rec.host}", danger=True)] if spec.about_host else []
        )
        if rec.state is not AlertState.ACKNOWLEDGED:
            buttons.insert(0, Button("Acknowledge", f"ack {rec.id}"))
        if buttons:
            blocks.append(Actions(tuple(buttons)))
    summary = f"{state_line}: {headline(rec)} (alert #{rec.id})" + (f" {who}" if who else "")
    notify = notify_ids(paging, platform) if who else ()
    return Reply(summary=summary, blocks=tuple(blocks), data={"alert": alert_json(rec)}, notify=notify)


def _state_line(rec: AlertRecord, now: datetime) -> tuple[str, Style]:
    if rec.state is AlertState.RESOLVED:
        took = _age((rec.resolved_at or now.timestamp()) - rec.first_seen)
        by = f" by {rec.resolved_by}" if rec.resolved_by else ""
        return f"RESOLVED{by} after {took}", Style.SUCCESS
    if rec.state is AlertState.ACKNOWLEDGED:
        return f"ACKNOWLEDGED by {rec.acked_by}", Style.WARNING
    label = rec.severity.value.upper()
    return label, Style.ERROR if rec.severity is Severity.CRITICAL else Style.WARNING


def note(rec: AlertRecord, text: str, *, style: Style = Style.PLAIN, notify: tuple[str, ...] = ()) -> Reply:
    """A thread reply under the page (escalations, acknowledgements, resolution)."""
    line = f"Alert #{rec.id} ({headline(rec)}): {text}"
    return Reply(summary=line, blocks=(Text(line, style),), data={"alert": alert_json(rec)}, notify=notify)


PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def pager_event(rec: AlertRecord, action: str, host: Host | None) -> Reply:
    """A forwarding event (PagerDuty/webhook senders read ``data["pager"]``)."""
    event: dict[str, Any] = {
        "event_action": action,
        "dedup_key": dedup_key(rec),
        "sequence": rec.version,  # orders and de-duplicates events of one alert for webhooks
        "summary": f"{rec.severity.value.upper()}: {headline(rec)} (alert #{rec.id})"[:1024],
        "source": rec.host,
        "severity": PD_SEVERITY[rec.severity],
        "component": rec.kind,
        "custom_details": {
            **alert_json(rec),
            "boot_device": host.boot_device.describe() if host else None,
            "release": host.release_name if host else None,
            "build": host.build if host else None,
        },
    }
    return Reply(summary=f"{action} {event['dedup_key']}", data={"pager": event})


def dedup_key(rec: AlertRecord) -> str:
    return f"esxbot/{rec.host}/{rec.kind}/{rec.id}"[:255]
