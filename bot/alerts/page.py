"""What an alert group says: the kinds we know (severity, advice) and the page, note and pager texts.

Pure functions from a group row, its member alerts (with their host facts and mute reasons) and the
people to mention to a ``Reply``; the engine decides when to send them. A page of one host says what
is known of it (boot device, build, release, the signals seen); a page of many names them in a table
under one headline ("bootbank lost on 12 hosts of cluster prod-a (ESXi 7.0 Update 2a, usb boot)").
Both say what to do: the fixing release when the matcher knows one, the workarounds, ack and shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerts.oncall import mention
from bot.clock import from_epoch
from bot.messages import Actions, Block, Button, Fields, Reply, Style, Table, Text
from bot.model import AlertState, Host, Severity
from bot.store.alert_groups import GroupRecord
from bot.store.alert_records import AlertRecord

FixHint = Callable[[Host], "str | None"]

_PERSISTENT = (
    "Lasting fix: move the boot device to persistent storage (local disk, SSD, M.2 or a boot LUN); "
    "USB and SD boot are deprecated for ESXi 7.0 and later."
)


MAX_PAGE_HOSTS = 50  # rows of a group page's host table; `alerts` lists the rest


@dataclass(frozen=True, slots=True)
class KindSpec:
    """An alert kind: default severity, its headlines, what to do, and which kinds clear with it.

    Which kinds mute which is data: ``bot/data/inhibit_rules.yaml``.
    """

    name: str
    severity: Severity
    headline: str  # completes "<host> …"
    short: str  # completes "… on 12 hosts of cluster prod-a"
    advice: tuple[str, ...]
    clears: tuple[str, ...] = ()  # when this kind clears, these clear with it
    upgrade_helps: bool = True
    about_host: bool = True  # False: the subject is not an inventory host (no host facts, no shutdown)


@dataclass(frozen=True, slots=True)
class Member:
    """One alert of a group as its page shows it: the row, the host's facts, why it is muted."""

    rec: AlertRecord
    host: Host | None
    muted: str | None = None


KINDS: Mapping[str, KindSpec] = {
    k.name: k
    for k in (
        KindSpec(
            "bootbank-loss",
            Severity.CRITICAL,
            "lost its bootbank (/bootbank cannot be found)",
            "bootbank lost",
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
            "boot-device trouble",
            (
                "Commands to the boot device time out or its path state is in doubt: ESXi 7.0 hosts in "
                "this state often lose /bootbank within hours. Plan a maintenance window now.",
                _PERSISTENT,
            ),
        ),
        KindSpec(
            "boot-device-corruption",
            Severity.CRITICAL,
            "reports a corrupt boot filesystem",
            "boot filesystem corrupt",
            ("Do not reboot before a backup of the host configuration exists.", _PERSISTENT),
        ),
        KindSpec(
            "host-not-responding",
            Severity.CRITICAL,
            "is not responding to vCenter",
            "not responding to vCenter",
            (
                "Check the management network and the host's console through its BMC; if the boot "
                "device is gone, a graceful shutdown from the BMC is the safe way out.",
            ),
            upgrade_helps=False,
        ),
        KindSpec(  # raised by bot/advisories for an advisory (its id stands where a host name would)
            "exploited-vulnerability",
            Severity.CRITICAL,
            "has a CVE exploited in the wild, and hosts are vulnerable to it",
            "exploited vulnerability",
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
    return KINDS.get(kind) or KindSpec(
        kind, Severity.WARNING, f"raised {kind}", kind, (), upgrade_helps=False
    )


def notify_ids(people: Sequence[Mapping[str, Any]], platform: str) -> tuple[str, ...]:
    """The user ids a message on ``platform`` means to ping (``Reply.notify``)."""
    ids = (p.get("ids") for p in people)
    return tuple(f"{platform}:{i[platform]}" for i in ids if isinstance(i, Mapping) and i.get(platform))


def people_of(levels: Sequence[Mapping[str, Any]], indices: Sequence[int]) -> list[Mapping[str, Any]]:
    seen: dict[str, Mapping[str, Any]] = {}
    for i in indices:
        if 0 <= i < len(levels):
            for person in levels[i].get("people", ()):
                seen.setdefault(str(person.get("name")), person)
    return list(seen.values())


def mentions(people: Sequence[Mapping[str, Any]], platform: str) -> str:
    return " ".join(mention(platform, p.get("ids", {}), str(p.get("name"))) for p in people)


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
        "group": f"g{rec.group_id}" if rec.group_id is not None else None,
        "labels": dict(rec.labels),
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


def _common(values: Sequence[str | None], many: str) -> str | None:
    known = sorted({v for v in values if v})
    if not known:
        return None
    return known[0] if len(known) == 1 else f"{len(known)} {many}"


def group_headline(group: GroupRecord, members: Sequence[Member], fix_hint: FixHint | None) -> str:
    """ "<host> lost its bootbank …" for one host; "bootbank lost on 12 hosts of cluster prod-a …"."""
    if len(members) == 1:
        return headline(members[0].rec)
    kinds = {m.rec.kind for m in members}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    what = kind_spec(kind).short if kind else "alerts"
    down = [m for m in members if m.rec.is_open]
    where = ""
    if group.labels.get("cluster"):
        where = f" of cluster {group.labels['cluster']}"
    elif group.labels.get("vcenter"):
        where = f" of vCenter {group.labels['vcenter']}"
    hosts = [m.host for m in down] or [m.host for m in members]
    facts = [
        f
        for f in (
            _common([h.release_name if h else None for h in hosts], "releases"),
            _common([h.boot_device.kind.value if h else None for h in hosts], "boot kinds"),
        )
        if f
    ]
    if len(facts) == 2 and not facts[1][0].isdigit():
        facts[1] = f"{facts[1]} boot"
    text = f"{what} on {len(down) or len(members)} hosts{where}" + (f" ({', '.join(facts)})" if facts else "")
    if kind and kind_spec(kind).upgrade_helps and fix_hint is not None:
        hints = [fix_hint(h) for h in hosts[:20] if h is not None]
        found = _common(hints, "fixes")
        if found:
            text += f" — fix: {found}"
    return text


def page(
    group: GroupRecord,
    members: Sequence[Member],
    platform: str,
    *,
    now: datetime,
    paging: Sequence[Mapping[str, Any]],
    fix_hint: FixHint | None,
) -> Reply:
    """The group's page in the state it is in; edits of the page are this same function later."""
    state_line, style = _state_line(group, now)
    who = mentions(paging, platform) if group.state is AlertState.FIRING else ""
    title = f"{state_line}: {group_headline(group, members, fix_hint)} ({_ref(group, members)})"
    blocks: list[Block] = [Text(title, style)]
    if who:
        blocks.append(Text(f"Paging {who}"))
    kinds = {m.rec.kind for m in members}
    spec = kind_spec(next(iter(kinds)) if len(kinds) == 1 else "")
    if len(members) == 1:
        only = members[0]
        blocks.append(_facts(only.rec, only.host))
        if only.muted:
            blocks.append(Text(f"Muted: {only.muted}", Style.WARNING))
        fix = fix_text(only.host, spec, fix_hint)
    else:
        blocks.append(_host_table(members, now))
        fix = ""
    if fix:
        blocks.append(Text(fix, Style.WARNING))
    if group.state is not AlertState.RESOLVED:
        blocks.extend(Text(f"What to do: {line}") for line in spec.advice[:1])
        blocks.extend(Text(line) for line in spec.advice[1:])
        buttons: list[Button] = []
        if group.state is not AlertState.ACKNOWLEDGED:
            label = "Acknowledge" if len(members) == 1 else f"Acknowledge all {len(members)}"
            buttons.append(Button(label, f"ack {group.ref}"))
        if len(members) == 1 and spec.about_host:
            buttons.append(Button("Shut down gracefully", f"shutdown {members[0].rec.host}", danger=True))
        if buttons:
            blocks.append(Actions(tuple(buttons)))
    summary = title + (f" {who}" if who else "")
    notify = notify_ids(paging, platform) if who else ()
    return Reply(
        summary=summary, blocks=tuple(blocks), data={"group": group_json(group, members)}, notify=notify
    )


def _ref(group: GroupRecord, members: Sequence[Member]) -> str:
    return f"alert #{members[0].rec.id}, group {group.ref}" if len(members) == 1 else f"group {group.ref}"


def member_state(m: Member) -> str:
    if not m.rec.is_open:
        return "recovered" if not m.rec.resolved_by else f"resolved by {m.rec.resolved_by}"
    if m.muted:
        return f"muted: {m.muted}"
    return "acknowledged" if m.rec.state is AlertState.ACKNOWLEDGED else "down"


def _host_table(members: Sequence[Member], now: datetime) -> Table:
    ordered = sorted(members, key=lambda m: (not m.rec.is_open, m.rec.host))
    rows = []
    for m in ordered[:MAX_PAGE_HOSTS]:
        release = (m.host.release_name or m.host.version or "?") if m.host else "not in inventory"
        boot = m.host.boot_device.describe() if m.host else "?"
        since = _age(now.timestamp() - m.rec.first_seen)
        rows.append((m.rec.host, member_state(m), since, release, boot, f"#{m.rec.id}"))
    down = sum(1 for m in members if m.rec.is_open)
    more = len(ordered) - MAX_PAGE_HOSTS
    title = f"{down} of {len(members)} hosts down" + (f"; {more} more in `alerts`" if more > 0 else "")
    return Table(("host", "state", "for", "release", "boot device", "alert"), tuple(rows), title=title)


def _state_line(group: GroupRecord, now: datetime) -> tuple[str, Style]:
    if group.state is AlertState.RESOLVED:
        took = _age((group.resolved_at or now.timestamp()) - group.first_seen)
        by = f" by {group.resolved_by}" if group.resolved_by else ""
        return f"RESOLVED{by} after {took}", Style.SUCCESS
    if group.state is AlertState.ACKNOWLEDGED:
        return f"ACKNOWLEDGED by {group.acked_by}", Style.WARNING
    label = group.severity.value.upper()
    return label, Style.ERROR if group.severity is Severity.CRITICAL else Style.WARNING


def group_json(group: GroupRecord, members: Sequence[Member]) -> dict[str, Any]:
    return {
        "id": group.ref,
        "key": group.group_key,
        "labels": dict(group.labels),
        "state": group.state.value,
        "severity": group.severity.value,
        "first_seen": _time(group.first_seen),
        "acked_by": group.acked_by,
        "hosts": [{"host": m.rec.host, "alert": m.rec.id, "state": member_state(m)} for m in members],
    }


def note(
    group: GroupRecord,
    members: Sequence[Member],
    text: str,
    *,
    style: Style = Style.PLAIN,
    notify: tuple[str, ...] = (),
) -> Reply:
    """A thread reply under the page (hosts joining, escalations, acknowledgements, resolution)."""
    line = f"{group_headline(group, members, None)} ({_ref(group, members)}): {text}"
    data = {"group": group_json(group, members)}
    return Reply(summary=line, blocks=(Text(line, style),), data=data, notify=notify)


PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def pager_event(group: GroupRecord, members: Sequence[Member], action: str) -> Reply:
    """A forwarding event, one PagerDuty incident per group (senders read ``data["pager"]``)."""
    first = members[0] if members else None
    host = first.host if first is not None and len(members) == 1 else None
    source = first.rec.host if first is not None and len(members) == 1 else group.group_key
    event: dict[str, Any] = {
        "event_action": action,
        "dedup_key": dedup_key(group),
        "sequence": group.version,  # orders and de-duplicates events of one group for webhooks
        "summary": f"{group.severity.value.upper()}: {group_headline(group, members, None)} ({group.ref})"[
            :1024
        ],
        "source": source[:255],
        "severity": PD_SEVERITY[group.severity],
        "component": group.labels.get("kind", "alerts"),
        "custom_details": {
            **group_json(group, members[:100]),
            "hosts_total": len(members),
            "boot_device": host.boot_device.describe() if host else None,
            "release": host.release_name if host else None,
            "build": host.build if host else None,
        },
    }
    return Reply(summary=f"{action} {event['dedup_key']}", data={"pager": event})


def dedup_key(group: GroupRecord) -> str:
    return f"esxbot/{group.group_key}/{group.ref}"[:255]
