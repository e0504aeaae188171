"""The alert lifecycle: signals open alerts, ``tick`` pages, escalates, repeats and re-fires them.

One alert per (host, kind) is open at a time (the database's partial unique index). A new alert waits
``group_wait`` as *pending*: if its condition clears within that time nobody is paged. Then it fires:
the page goes to every room subscribed to the ``alerts`` topic, mentioning the first levels of the
on-call chain snapshotted into the alert; later levels are mentioned in the page's thread when their
time comes, and the whole chain again every ``repeat`` while nobody acknowledges. An acknowledgement
older than ``ack_timeout`` re-fires. Clearing the condition (or ``resolve``) edits the page in place
and says so in its thread. Silences and inhibition (a host's bootbank loss mutes its derived alerts)
hold steps back without losing them.

Every change of state is a compare-and-set on the alert's ``version`` together with its outbox rows,
in one transaction: a stale timer, a second engine or an old leader computing the same step changes
nothing and sends nothing, and a crash leaves either both or neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot.alerts.intake import EngineConfig, Signal, signal_from_log
from bot.alerts.oncall import OnCallPolicy, parse_oncall
from bot.alerts.page import FixHint, kind_spec, mentions, note, notify_ids, page, pager_event, people_of
from bot.alerts.signals import LogSignal
from bot.chat.outbox import Outbox
from bot.clock import Clock
from bot.messages import Reply, Style
from bot.model import AlertState, Host
from bot.store.alert_records import AlertRecord, AlertRepo, Silence, SilenceRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database
from bot.store.subscriptions import SubscriptionRepo

log = logging.getLogger(__name__)

HostLookup = Callable[[str], Host | None]
_CAS_RETRIES = 5


class AlertError(Exception):
    """A request about an alert cannot be done (unknown id, already resolved); a sentence for users."""


@dataclass(frozen=True, slots=True)
class _Message:
    conversation: str
    reply: Reply
    key: str
    thread_of: str | None = None  # outbox key of the page whose thread this goes into
    edit_of: str | None = None


class AlertEngine:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        hosts: HostLookup,
        policy: OnCallPolicy | None = None,
        config: EngineConfig | None = None,
        fix_hint: FixHint | None = None,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._clock = clock
        self._hosts = hosts
        self.policy = policy or parse_oncall(None)
        self.config = config or EngineConfig()
        self._fix_hint = fix_hint
        self.alerts = AlertRepo(db)
        self.silences = SilenceRepo(db)
        self._subs = SubscriptionRepo(db)
        self._outbox_rows = OutboxRepo(db)
        self._wake = asyncio.Event()

    # ----- signals -------------------------------------------------------------------------------
    async def ingest(self, signal: Signal) -> AlertRecord | None:
        """Open or refresh the (host, kind) alert, or resolve it (and what it clears) on ``clear``."""
        if not signal.host or not signal.kind:
            log.warning("alert signal without host or kind dropped: %r", signal)
            return None
        now = self._now()
        if signal.clear:
            kinds = (signal.kind, *kind_spec(signal.kind).clears)
            found = None
            for kind in kinds:
                rec = await self.alerts.open_for(signal.host, kind)
                if rec is not None:
                    done = await self._resolve(rec.id, by=None, why=signal.detail or signal.source)
                    found = found or done
            return found
        spec = kind_spec(signal.kind)
        for _ in range(_CAS_RETRIES):
            rec = await self.alerts.open_for(signal.host, signal.kind)
            if rec is not None:
                await self.alerts.touch(rec, source=signal.source, detail=signal.detail, now=now)
                return await self.alerts.get(rec.id)
            rec = await self.alerts.insert(
                host=signal.host,
                kind=signal.kind,
                severity=signal.severity or spec.severity,
                summary=f"{signal.host} {spec.headline}",
                detail=signal.detail,
                device=signal.device,
                source=signal.source,
                now=now,
                next_step_at=now + self.config.group_wait.total_seconds(),
            )
            if rec is not None:
                log.info("alert #%d opened: %s %s", rec.id, rec.host, rec.kind)
                self._wake.set()
                return rec
        log.error("could not open or find the %s alert of %s", signal.kind, signal.host)
        return None

    async def ingest_log(self, sig: LogSignal) -> None:
        """The syslog receiver's sink: log signals of known hosts become engine signals."""
        signal = signal_from_log(sig)
        if signal is None:
            log.debug("log signal without an inventory host dropped: %s", sig.line[:120])
            return
        await self.ingest(signal)

    # ----- the scheduler's entry points -------------------------------------------------------------
    async def tick(self) -> int:
        """Run every step that is due now; the number of steps that changed an alert."""
        done = 0
        for rec in await self.alerts.due(self._now()):
            try:
                if await self.run_step(rec.id, rec.version):
                    done += 1
            except Exception:
                log.exception("alert #%d: step failed; it stays due", rec.id)
        return done

    async def run_step(self, alert_id: int, version: int) -> bool:
        """The scheduled step of one alert, fenced by ``version``: False when it was stale."""
        rec = await self.alerts.get(alert_id)
        now = self._now()
        if rec is None or rec.version != version or rec.next_step_at is None or rec.next_step_at > now:
            return False
        muted = await self._muted(rec)
        if muted is not None:
            return await self._apply(
                rec, [], muted=muted, next_step_at=now + self.config.recheck.total_seconds()
            )
        if rec.state is AlertState.PENDING:
            return await self._fire(rec, now, refire=False)
        if rec.state is AlertState.ACKNOWLEDGED:
            return await self._fire(rec, now, refire=True)
        return await self._escalate(rec, now)

    async def run(self) -> None:
        """Tick whenever a step is due or a signal arrived, until cancelled (the app's TaskGroup)."""
        while True:
            self._wake.clear()
            try:
                await self.tick()
                next_at = await self.alerts.next_due_at()
            except Exception:
                log.exception("alert tick failed; retrying")
                next_at = None
            delay = 30.0 if next_at is None else min(30.0, max(0.01, next_at - self._now()))
            waiter = asyncio.ensure_future(self._wake.wait())
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiter, sleeper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    # ----- people's actions ----------------------------------------------------------------------
    async def ack(self, alert_id: int, by: str) -> AlertRecord:
        for _ in range(_CAS_RETRIES):
            rec = await self._open(alert_id)
            now = self._now()
            timeout = self.policy.ack_timeout
            changes: dict[str, Any] = {
                "state": AlertState.ACKNOWLEDGED,
                "acked_by": by,
                "acked_at": now,
                "next_step_at": now + timeout.total_seconds() if timeout else None,
            }
            after = _with(rec, changes)
            messages = self._page_edits(after) + self._notes(after, f"acknowledged by {by}.", Style.SUCCESS)
            if rec.fired_at is not None:
                messages += self._forward(after, "acknowledge")
            if await self._apply(rec, messages, **changes):
                return await self._must(alert_id)
        raise AlertError(f"Alert #{alert_id} keeps changing; try again.")

    async def resolve(self, alert_id: int, by: str) -> AlertRecord:
        await self._open(alert_id)
        rec = await self._resolve(alert_id, by=by, why=f"resolved by hand by {by}")
        if rec is None:
            raise AlertError(f"Alert #{alert_id} is already resolved.")
        return rec

    async def silence(
        self, host: str, duration: timedelta, *, reason: str, by: str, kind: str | None = None
    ) -> Silence:
        now = self._clock.now()
        made = await self.silences.add(
            host=host, kind=kind, ends_at=now + duration, reason=reason, by=by, now=now
        )
        self._wake.set()
        return made

    async def unsilence(self, host: str, by: str) -> int:
        ended = await self.silences.cancel_host(host, by=by, now=self._clock.now())
        for rec in await self.alerts.open_for_host(host):
            if rec.muted:  # look again now instead of at the next recheck
                await self._apply(rec, [], next_step_at=self._now())
        self._wake.set()
        return ended

    # ----- steps ---------------------------------------------------------------------------------
    async def _fire(self, rec: AlertRecord, now: float, *, refire: bool) -> bool:
        levels = self.policy.snapshot(self._clock.now())
        first = [i for i, lvl in enumerate(levels) if float(lvl["after"]) <= 0] or [0]
        step = max(first) + 1
        changes: dict[str, Any] = {
            "state": AlertState.FIRING,
            "fired_at": now,
            "policy": levels,
            "escalation_step": step,
            "next_step_at": self._next_at(levels, step, now, now),
            "muted": None,
            "acked_by": None,
            "acked_at": None,
        }
        after = _with(rec, changes)
        paging = people_of(levels, first)
        messages: list[_Message] = []
        if refire and rec.page_key:
            messages += self._page_edits(after, paging)
            messages += self._notes(
                after,
                f"the acknowledgement by {rec.acked_by} timed out; firing again.",
                Style.ERROR,
                paging,
            )
        else:
            rooms = await self._subs.rooms(self.config.topic)
            if not rooms:
                log.warning("alert #%d fires but no room subscribes to %r", rec.id, self.config.topic)
            base = f"alert:{rec.id}:page"
            changes |= {"page_key": base, "page_rooms": rooms}
            after = _with(rec, changes)
            host = self._host(rec.host)
            for room in rooms:
                reply = page(
                    after,
                    host,
                    room.split(":", 1)[0],
                    now=self._clock.now(),
                    paging=paging,
                    fix_hint=self._safe_hint,
                )
                messages.append(_Message(room, reply, f"{base}@{room}"))
        messages += self._forward(after, "trigger")
        return await self._apply(rec, messages, **changes)

    async def _escalate(self, rec: AlertRecord, now: float) -> bool:
        levels: list[dict[str, Any]] = list(rec.policy or [])
        step = rec.escalation_step
        fired = rec.fired_at or now
        if step < len(levels):
            who = people_of(levels, [step])
            label = levels[step].get("label", "next level")
            minutes = int((now - fired) // 60)
            text = f"not acknowledged after {minutes} min; escalating to the {label}."
        else:
            who = people_of(levels, range(len(levels)))
            text = "still firing and not acknowledged."
        changes = {
            "escalation_step": step + 1,
            "next_step_at": self._next_at(levels, step + 1, fired, now),
            "muted": None,
        }
        after = _with(rec, changes)
        return await self._apply(rec, self._notes(after, text, Style.ERROR, who), **changes)

    def _next_at(self, levels: Sequence[dict[str, Any]], step: int, fired: float, now: float) -> float | None:
        if step < len(levels):
            return max(now, fired + float(levels[step]["after"]))
        repeat = self.policy.repeat
        return now + repeat.total_seconds() if repeat else None

    async def _resolve(self, alert_id: int, *, by: str | None, why: str) -> AlertRecord | None:
        for _ in range(_CAS_RETRIES):
            rec = await self.alerts.get(alert_id)
            if rec is None or not rec.is_open:
                return None
            changes: dict[str, Any] = {
                "state": AlertState.RESOLVED,
                "resolved_at": self._now(),
                "resolved_by": by,
                "next_step_at": None,
            }
            after = _with(rec, changes)
            messages: list[_Message] = []
            if rec.fired_at is not None:
                text = f"resolved by {by}." if by else f"resolved: the condition cleared ({why[:300]})."
                messages = self._page_edits(after) + self._notes(after, text, Style.SUCCESS)
                messages += self._forward(after, "resolve")
            if await self._apply(rec, messages, **changes):
                log.info("alert #%d resolved (%s)", alert_id, "paged" if rec.fired_at else "never paged")
                return await self.alerts.get(alert_id)
        raise AlertError(f"Alert #{alert_id} keeps changing; try again.")

    async def _apply(self, rec: AlertRecord, messages: Sequence[_Message], **changes: Any) -> bool:
        """Compare-and-set the alert and queue its messages in one transaction; False when stale."""
        async with self._db.transaction():
            if not await self.alerts.cas(rec.id, rec.version, **changes):
                return False
            for m in messages:
                thread = await self._outbox_rows.message_id(m.thread_of) if m.thread_of else None
                await self._outbox.enqueue(
                    m.conversation, m.reply, thread=thread, key=m.key, edit_of=m.edit_of
                )
        return True

    # ----- messages ------------------------------------------------------------------------------
    def _page_edits(self, rec: AlertRecord, paging: Sequence[Any] = ()) -> list[_Message]:
        if not rec.page_key:
            return []
        host = self._host(rec.host)
        return [
            _Message(
                room,
                page(
                    rec,
                    host,
                    room.split(":", 1)[0],
                    now=self._clock.now(),
                    paging=paging,
                    fix_hint=self._safe_hint,
                ),
                f"alert:{rec.id}:v{rec.version}:edit@{room}",
                edit_of=f"{rec.page_key}@{room}",
            )
            for room in rec.page_rooms
        ]

    def _notes(self, rec: AlertRecord, text: str, style: Style, who: Sequence[Any] = ()) -> list[_Message]:
        if not rec.page_key:
            return []
        out = []
        for room in rec.page_rooms:
            platform = room.split(":", 1)[0]
            named = mentions(who, platform)
            reply = note(rec, f"{text} {named}".strip(), style=style, notify=notify_ids(who, platform))
            out.append(
                _Message(
                    room,
                    reply,
                    f"alert:{rec.id}:v{rec.version}:note@{room}",
                    thread_of=f"{rec.page_key}@{room}",
                )
            )
        return out

    def _forward(self, rec: AlertRecord, action: str) -> list[_Message]:
        host = self._host(rec.host)
        return [
            _Message(
                target, pager_event(rec, action, host), f"alert:{rec.id}:v{rec.version}:{action}@{target}"
            )
            for target in self.config.forward_to
        ]

    # ----- helpers -------------------------------------------------------------------------------
    async def _muted(self, rec: AlertRecord) -> str | None:
        silence = await self.silences.matching(rec.host, rec.kind, self._clock.now())
        if silence is not None:
            return f"silenced by {silence.created_by} until {silence.ends_at:%Y-%m-%d %H:%M} UTC"
        for kind in kind_spec(rec.kind).inhibited_by:
            source = await self.alerts.open_for(rec.host, kind)
            if source is not None:
                return f"inhibited by alert #{source.id} ({kind})"
        return None

    async def _open(self, alert_id: int) -> AlertRecord:
        rec = await self.alerts.get(alert_id)
        if rec is None:
            raise AlertError(f"No alert #{alert_id}.")
        if not rec.is_open:
            raise AlertError(f"Alert #{alert_id} is already resolved.")
        return rec

    async def _must(self, alert_id: int) -> AlertRecord:
        rec = await self.alerts.get(alert_id)
        if rec is None:
            raise AlertError(f"No alert #{alert_id}.")
        return rec

    def _host(self, name: str) -> Host | None:
        try:
            return self._hosts(name)
        except Exception:
            log.exception("host lookup for %s failed", name)
            return None

    def _safe_hint(self, host: Host) -> str | None:
        if self._fix_hint is None:
            return None
        try:
            return self._fix_hint(host)
        except Exception:
            log.exception("fix hint for %s failed", host.name)
            return None

    def _now(self) -> float:
        return self._clock.now().timestamp()


def _with(rec: AlertRecord, changes: Mapping[str, Any]) -> AlertRecord:
    """The record as it will be after ``changes`` (for texts built before the write)."""
    fields = dict(changes)
    if "page_rooms" in fields:
        fields["page_rooms"] = tuple(fields["page_rooms"])
    return replace(rec, **fields, version=rec.version + 1)
