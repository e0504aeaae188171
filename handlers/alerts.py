"""``alerts``, ``ack``, ``resolve``, ``silence``, ``unsilence``, ``oncall``: the people's side of alerting."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from bot.alerts.engine import AlertEngine, AlertError
from bot.alerts.page import alert_json
from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import CommandError, command
from bot.durations import format_duration
from bot.inventory.merged import find_host
from bot.messages import Fields, Reply, Style, Table, Text
from bot.store.alert_records import AlertRecord

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


def _since(epoch: float, now: datetime) -> str:
    minutes = int(max(0.0, now.timestamp() - epoch) // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _status(rec: AlertRecord) -> str:
    if rec.muted and rec.is_open:
        return f"{rec.state.value} (muted: {rec.muted})"
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
    rows = tuple(
        (f"#{a.id}", a.host, a.kind, a.severity.value, _status(a), _since(a.first_seen, now)) for a in found
    )
    title = f"{len(found)} {'alert' if len(found) == 1 else 'alerts'}"
    return Reply(
        summary=title,
        blocks=(Table(("alert", "host", "kind", "severity", "state", "age"), rows, title=title),),
        data={"alerts": [alert_json(a) for a in found]},
    )


@command(
    "ack", help="Acknowledge an alert: stops its escalation", role=Role.OPERATOR, aliases=("acknowledge",)
)
async def ack(ctx: Context, alert: str) -> Reply:
    try:
        rec = await _engine(ctx).ack(_alert_id(ctx, alert), ctx.user.id)
    except AlertError as exc:
        raise CommandError(str(exc)) from None
    timeout = _engine(ctx).policy.ack_timeout
    again = f" It fires again if still open in {format_duration(timeout)}." if timeout else ""
    text = f"Alert #{rec.id} ({rec.host} {rec.kind}) acknowledged by {ctx.user.label}.{again}"
    return Reply(summary=text, blocks=(Text(text, Style.SUCCESS),), data={"alert": alert_json(rec)})


@command("resolve", help="Resolve an alert by hand (audited)", role=Role.OPERATOR)
async def resolve(ctx: Context, alert: str) -> Reply:
    try:
        rec = await _engine(ctx).resolve(_alert_id(ctx, alert), ctx.user.id)
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


@command(
    "silence", help="Mute a host's alerts for a while: silence <host> <duration> [reason]", role=Role.OPERATOR
)
async def silence(ctx: Context, host: str, duration: timedelta, *reason: str) -> Reply:
    engine = _engine(ctx)
    if duration > MAX_SILENCE:
        raise CommandError("A silence lasts at most 30 days.")
    name = await _host_name(ctx, engine, host)
    made = await engine.silence(name, duration, reason=" ".join(reason), by=ctx.user.id)
    why = f" ({made.reason})" if made.reason else ""
    text = f"Alerts of {name} are silenced until {made.ends_at:%Y-%m-%d %H:%M} UTC{why}."
    return Reply(
        summary=text,
        blocks=(Text(text, Style.WARNING),),
        data={
            "silence": {
                "id": made.id,
                "host": name,
                "ends_at": made.ends_at.isoformat(),
                "reason": made.reason,
            }
        },
    )


@command("unsilence", help="End a host's silences", role=Role.OPERATOR)
async def unsilence(ctx: Context, host: str) -> Reply:
    engine = _engine(ctx)
    name = find_host(ctx.services.inventory.hosts(), host)
    target = name.name if name else host
    ended = await engine.unsilence(target, ctx.user.id)
    if not ended:
        return Reply.text(f"{target} has no active silence.", style=Style.WARNING)
    return Reply.text(f"Alerts of {target} page again ({ended} silence{'s' if ended != 1 else ''} ended).")


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
