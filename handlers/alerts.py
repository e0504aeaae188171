"""``alerts``, ``ack``, ``resolve``, ``silence``, ``silences``, ``unsilence``, ``oncall``: the people's side.

Alerts are numbers (``#12``: one host's alert), groups are ``g`` and a number (``g3``: the page that
names every host of one cluster and kind); ``ack`` and ``resolve`` take either.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from bot.alerts.engine import AlertEngine, AlertError
from bot.alerts.labels import LABELS, MatcherError, matcher
from bot.alerts.muting import MuteView, describe_matchers
from bot.alerts.page import alert_json
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import CommandError, command
from bot.durations import format_duration, parse_duration
from bot.inventory.merged import find_host
from bot.messages import Fields, Reply, Style, Table, Text
from bot.store.alert_records import AlertRecord, Silence

MAX_SILENCE = timedelta(days=30)


def _engine(ctx: Context) -> AlertEngine:
    if ctx.services.alerts is None:
        raise CommandError("Alerting is not configured on this bot.")
    return ctx.services.alerts


def _alert_id(ctx: Context, raw: str) -> int:
    text = raw.strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise CommandError(f"`{raw[:30]}` is not an alert number; `{ctx.command.form('alerts')}` lists them.")
    return int(text)


def _target(ctx: Context, raw: str) -> tuple[str, int]:
    """``12``/``#12`` → ("alert", 12); ``g3`` → ("group", 3)."""
    text = raw.strip().lstrip("#")
    if text[:1].lower() == "g" and text[1:].isdigit() and len(text) <= 13:
        return "group", int(text[1:])
    return "alert", _alert_id(ctx, raw)


def _since(epoch: float, now: datetime) -> str:
    minutes = int(max(0.0, now.timestamp() - epoch) // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _status(rec: AlertRecord, view: MuteView) -> str:
    muted = view.reason(rec) if rec.is_open else None
    if muted:
        return f"{rec.state.value} (muted: {muted})"
    if rec.acked_by and rec.state.value == "acknowledged":
        return f"acknowledged by {rec.acked_by}"
    return rec.state.value


@command("alerts", help="Open alerts; `alerts all` includes resolved ones", role=Role.VIEWER)
async def alerts(ctx: Context, scope: Literal["all"] | None = None) -> Reply:
    engine = _engine(ctx)
    found = await engine.alerts.listing(include_resolved=scope == "all")
    if not found:
        return Reply.text("No open alerts." if scope is None else "No alerts yet.", style=Style.SUCCESS)
    now = ctx.services.clock.now()
    view = await engine.mute_view()
    rows = tuple(
        (
            f"#{a.id}",
            f"g{a.group_id}" if a.group_id is not None else "-",
            a.host,
            a.kind,
            a.severity.value,
            _status(a, view),
            _since(a.first_seen, now),
        )
        for a in found
    )
    title = f"{len(found)} {'alert' if len(found) == 1 else 'alerts'}"
    data = [alert_json(a) | {"muted": view.reason(a) if a.is_open else None} for a in found]
    return Reply(
        summary=title,
        blocks=(Table(("alert", "group", "host", "kind", "severity", "state", "age"), rows, title=title),),
        data={"alerts": data},
    )


@command(
    "ack",
    help="Acknowledge an alert (`ack 12`) or a whole group (`ack g3`): stops the escalation",
    role=Role.OPERATOR,
    aliases=("acknowledge",),
)
async def ack(ctx: Context, alert: str) -> Reply:
    engine = _engine(ctx)
    what, number = _target(ctx, alert)
    timeout = engine.policy.ack_timeout
    again = f" It fires again if still open in {format_duration(timeout)}." if timeout else ""
    try:
        if what == "group":
            group = await engine.ack_group(number, ctx.user.id)
            hosts = [r for r in await engine.alerts.members(group.id) if r.is_open]
            text = f"Group {group.ref} ({len(hosts)} open hosts) acknowledged by {ctx.user.label}.{again}"
            data = {"group": group.ref, "hosts": [r.host for r in hosts]}
            return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data=data)
        rec = await engine.ack(number, ctx.user.id)
    except AlertError as exc:
        raise CommandError(str(exc)) from None
    text = f"Alert #{rec.id} ({rec.host} {rec.kind}) acknowledged by {ctx.user.label}.{again}"
    return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data={"alert": alert_json(rec)})


@command(
    "resolve", help="Resolve an alert (`resolve 12`) or a group (`resolve g3`) by hand", role=Role.OPERATOR
)
async def resolve(ctx: Context, alert: str) -> Reply:
    engine = _engine(ctx)
    what, number = _target(ctx, alert)
    try:
        if what == "group":
            group = await engine.resolve_group(number, ctx.user.id)
            text = f"Group {group.ref} resolved by {ctx.user.label}."
            return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data={"group": group.ref})
        rec = await engine.resolve(number, ctx.user.id)
    except AlertError as exc:
        raise CommandError(str(exc)) from None
    text = f"Alert #{rec.id} ({rec.host} {rec.kind}) resolved by {ctx.user.label}."
    return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data={"alert": alert_json(rec)})


async def _host_name(ctx: Context, engine: AlertEngine, raw: str) -> str:
    host = find_host(ctx.services.inventory.hosts(), raw)
    if host is not None:
        return host.name
    if await engine.alerts.open_for_host(raw):
        return raw  # a host we only know from its signals (syslog source, another vCenter)
    raise CommandError(f"No host `{raw[:60]}` in the inventory or in the open alerts.")


def _matchers(words: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for word in words:
        label, _, value = word.partition("=")
        label = label.strip().lower()
        try:
            m = matcher(label, value, "silence")
        except MatcherError:
            raise CommandError(
                f"`{word[:60]}` is not a matcher: use label=glob with a label of {', '.join(LABELS)}."
            ) from None
        found[m.label] = found.get(m.label, ()) + m.globs
    return found


def _silence_data(made: Silence) -> dict[str, object]:
    return {
        "id": made.id,
        "matchers": {k: list(v) for k, v in made.matchers.items()},
        "host": "|".join(made.matchers.get("host", ())) or None,
        "ends_at": made.ends_at.isoformat(),
        "reason": made.reason,
        "by": made.created_by,
    }


@command(
    "silence",
    help="Mute alerts for a while: silence host=esx0* kind=bootbank-loss 2h [reason], "
    "silence cluster=prod-a 30m, silence g3 1h (a group), or silence <host> <duration> [reason]",
    role=Role.OPERATOR,
)
async def silence(ctx: Context, what: str, *duration_and_reason: str) -> Reply:
    engine = _engine(ctx)
    words = [what, *duration_and_reason]
    given = [w for w in words if "=" in w and not w.startswith("=")]
    count = 0
    while count < len(words) and words[count] in given:
        count += 1
    kind, number = _target(ctx, what) if what[:1] in "gG" and what[1:].isdigit() else ("host", 0)
    if count:
        matchers = _matchers(words[:count])
        rest_words = words[count:]
    elif kind == "group":  # the group's labels: its hosts and any that join it later
        group = await engine.groups.get(number)
        if group is None:
            raise CommandError(f"No alert group {what}; `alerts` shows each alert's group.")
        if all(group.labels.get(label) for label in engine.config.group_by):
            matchers = {label: (group.labels[label],) for label in engine.config.group_by}
        else:  # a label the group lacks cannot be matched: its hosts by name instead
            hosts = sorted({r.host for r in await engine.alerts.members(group.id)})
            matchers = {"host": tuple(hosts), "kind": tuple(sorted({group.labels.get("kind", "*")}))}
        rest_words = words[1:]
    else:  # the old form: one host by name
        matchers = {"host": (await _host_name(ctx, engine, what),)}
        rest_words = words[1:]
    if not rest_words:
        raise CommandError("Say for how long, e.g. `silence cluster=prod-a 30m`.")
    try:
        duration = parse_duration(rest_words[0])
    except ValueError:
        raise CommandError(f"`{rest_words[0][:30]}` is not a duration such as 30m, 2h or 1d.") from None
    if duration > MAX_SILENCE:
        raise CommandError("A silence lasts at most 30 days.")
    made = await engine.silence(matchers, duration, reason=" ".join(rest_words[1:]), by=ctx.user.id)
    view = await engine.mute_view()
    muted = sum(1 for a in await engine.alerts.open_all() if (view.reason(a) or "").endswith(f"#{made.id})"))
    why = f" ({made.reason})" if made.reason else ""
    text = (
        f"Silence #{made.id}: alerts matching {describe_matchers(made)} are muted until "
        f"{made.ends_at:%Y-%m-%d %H:%M} UTC{why}; it mutes {muted} open "
        f"{'alert' if muted == 1 else 'alerts'} now. `unsilence {made.id}` ends it."
    )
    return Reply(summary=text, blocks=(Text(text, Style.WARNING),), data={"silence": _silence_data(made)})


@command("silences", help="The silences in force: id, matchers, author, reason, expiry", role=Role.VIEWER)
async def silences(ctx: Context) -> Reply:
    active = await _engine(ctx).silences.active(ctx.services.clock.now())
    if not active:
        return Reply.text("No silence is in force.", style=Style.SUCCESS)
    rows = tuple(
        (f"#{s.id}", describe_matchers(s), s.created_by, s.reason or "-", f"{s.ends_at:%Y-%m-%d %H:%M} UTC")
        for s in active
    )
    title = f"{len(active)} {'silence' if len(active) == 1 else 'silences'} in force"
    return Reply(
        summary=title,
        blocks=(Table(("silence", "matchers", "by", "reason", "until"), rows, title=title),),
        data={"silences": [_silence_data(s) for s in active]},
    )


@command(
    "unsilence", help="End a silence by its id (`unsilence 4`), or a host's silences", role=Role.OPERATOR
)
async def unsilence(ctx: Context, target: str) -> Reply:
    engine = _engine(ctx)
    text = target.strip().lstrip("#")
    if text.isdigit() and len(text) <= 12:
        ended = await engine.unsilence(int(text), ctx.user.id)
        if ended is None:
            return Reply.text(f"No silence #{text} is in force; `silences` lists them.", style=Style.WARNING)
        return Reply.text(f"Silence #{ended.id} ({describe_matchers(ended)}) ended; those alerts page again.")
    name = find_host(ctx.services.inventory.hosts(), target)
    host = name.name if name else target
    count = await engine.unsilence_host(host, ctx.user.id)
    if not count:
        return Reply.text(f"{host} has no active silence.", style=Style.WARNING)
    return Reply.text(f"Alerts of {host} page again ({count} silence{'s' if count != 1 else ''} ended).")


@command("oncall", help="Who is on call now, or next", role=Role.VIEWER)
async def oncall(ctx: Context, when: Literal["now", "next"] = "now") -> Reply:
    policy = _engine(ctx).policy
    now = ctx.services.clock.now()
    shift = policy.current(now) if when == "now" else policy.upcoming(now)
    if shift is None:
        return Reply.text("No on-call rotation is configured: pages go to the subscribed rooms only.")
    tz = policy.rotation.tz if policy.rotation else None
    start, end = (shift.start.astimezone(tz), shift.end.astimezone(tz)) if tz else (shift.start, shift.end)
    items = [
        ("On call", shift.person + (" (override)" if shift.override else "")),
        ("From", f"{start:%a %Y-%m-%d %H:%M %Z}"),
        ("Until", f"{end:%a %Y-%m-%d %H:%M %Z}"),
    ]
    if when == "now":
        backup = policy.secondary(now)
        if backup is not None:
            items.append(("Next level", backup.name))
    summary = f"{'On call now' if when == 'now' else 'Next on call'}: {shift.person} until {end:%a %H:%M %Z}"
    return Reply(
        summary=summary,
        blocks=(Fields(tuple(items), title="On call" if when == "now" else "Next on call"),),
        data={"person": shift.person, "start": shift.start.isoformat(), "end": shift.end.isoformat()},
    )
