"""The alert lifecycle: signals open alerts, alerts join groups, ``tick`` runs what is due.

One alert per (host, kind) is open at a time (the database's partial unique index). A new alert waits
``for`` as *pending*: if its condition clears within that time nobody is paged. Then it fires and joins
the open group of its group key (``group_by`` labels, default kind and cluster), or opens one; the
group pages, escalates and resolves (``bot.alerts.groups``). A silence whose matchers fit an alert's
labels, or an inhibition rule (``bot/data/inhibit_rules.yaml`` plus the users' files), holds the alert
back without losing it: a pending alert stays out of its group, a grouped one is shown as muted and
a group whose hosts are all muted does not escalate.

Every change of state is a compare-and-set on the row's ``version`` together with its outbox rows,
in one transaction: a stale timer, a second engine or an old leader computing the same step changes
nothing and sends nothing, and a crash leaves either both or neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from bot.alerts.groups import GroupDeps, GroupPager
from bot.alerts.inhibition import InhibitRuleSet, load_inhibit_rules
from bot.alerts.intake import EngineConfig, Signal, signal_from_log
from bot.alerts.labels import alert_labels, group_key
from bot.alerts.muting import MuteView, mute_view
from bot.alerts.oncall import OnCallPolicy, parse_oncall
from bot.alerts.page import FixHint, kind_spec
from bot.alerts.signals import LogSignal
from bot.chat.outbox import Outbox
from bot.clock import Clock
from bot.model import AlertState, Host
from bot.store.alert_groups import GroupRecord
from bot.store.alert_records import AlertRecord, AlertRepo, Silence, SilenceRepo
from bot.store.sql.base import Database

log = logging.getLogger(__name__)

HostLookup = Callable[[str], Host | None]
_CAS_RETRIES = 5


class AlertError(Exception):
    """A request about an alert cannot be done (unknown id, already resolved); a sentence for users."""


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
        inhibitions: InhibitRuleSet | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._hosts = hosts
        self.policy = policy or parse_oncall(None)
        self.config = config or EngineConfig()
        self._fix_hint = fix_hint
        self.inhibitions = inhibitions or load_inhibit_rules()
        self.alerts = AlertRepo(db)
        self.silences = SilenceRepo(db)
        self.pager = GroupPager(
            GroupDeps(
                db, outbox, self.alerts, self.policy, self.config, self._host, self._safe_hint, clock.now
            )
        )
        self.groups = self.pager.repo
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
                next_step_at=now + self.config.pending_for.total_seconds(),
                labels=alert_labels(signal.host, signal.kind, self._host(signal.host), signal.labels),
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
        """Run every alert step, then every group step, that is due now; the number that changed."""
        done = 0
        due = await self.alerts.due(self._now())
        groups = await self.groups.due(self._now())
        if not due and not groups:
            return 0
        view = await self.mute_view()  # once per tick: a storm's signals must not each reload it
        for rec in due:
            try:
                if await self.run_step(rec.id, rec.version, view):
                    done += 1
            except Exception:
                log.exception("alert #%d: step failed; it stays due", rec.id)
        for group in await self.groups.due(self._now()) if due else groups:  # with the groups just opened
            try:
                if await self.pager.step(group.id, group.version, view):
                    done += 1
            except Exception:
                log.exception("alert group %s: step failed; it stays due", group.ref)
        return done

    async def run_step(self, alert_id: int, version: int, view: MuteView | None = None) -> bool:
        """A pending (or held) alert's step, fenced by ``version``: False when it was stale."""
        rec = await self.alerts.get(alert_id)
        now = self._now()
        if rec is None or rec.version != version or rec.next_step_at is None or rec.next_step_at > now:
            return False
        view = view or await self.mute_view()
        muted = view.reason(rec)
        if muted is not None:
            again = now + self.config.recheck.total_seconds()
            until = view.silenced_until(rec)
            if until is not None:  # a silence ends on time, not at the next recheck
                again = min(again, until.timestamp())
            return await self.alerts.cas(rec.id, rec.version, muted=muted, next_step_at=again)
        return await self._join(rec, now)

    async def _join(self, rec: AlertRecord, now: float) -> bool:
        """Fire the alert into the open group of its key (opening one that waits ``group_wait``)."""
        names = self.config.group_by
        key = group_key(rec.labels, names)
        labels = {n: rec.labels[n] for n in names if rec.labels.get(n)}
        for _ in range(_CAS_RETRIES):
            group, new = await self.groups.open_or_insert(
                key, labels, rec.severity, now=now, first_step_at=now + self.config.group_wait.total_seconds()
            )
            state = AlertState.ACKNOWLEDGED if rec.state is AlertState.ACKNOWLEDGED else AlertState.FIRING
            if not await self.alerts.cas(
                rec.id,
                rec.version,
                state=state,
                fired_at=now,
                group_id=group.id,
                next_step_at=None,
                muted=None,
            ):
                return False
            again = await self.groups.get(group.id)
            if again is not None and again.is_open:  # not resolved by its last host meanwhile
                if not new:
                    await self.pager.changed(group.id)
                self._wake.set()
                return True
            fresh = await self.alerts.get(rec.id)
            if fresh is None or not fresh.is_open:
                return True
            rec = fresh
        log.error("alert #%d could not join a group %s", rec.id, key)
        return False

    async def run(self) -> None:
        """Tick whenever a step is due or a signal arrived, until cancelled (the app's TaskGroup)."""
        while True:
            self._wake.clear()
            try:
                await self.tick()
                times = [t for t in (await self.alerts.next_due_at(), await self.groups.next_due_at()) if t]
                next_at = min(times) if times else None
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
        """Acknowledge one host's alert; when every host of its group is acknowledged, the group too."""
        for _ in range(_CAS_RETRIES):
            rec = await self._open(alert_id)
            if rec.state is AlertState.ACKNOWLEDGED:
                return rec
            if await self.alerts.cas(
                rec.id, rec.version, state=AlertState.ACKNOWLEDGED, acked_by=by, acked_at=self._now()
            ):
                if rec.group_id is not None:
                    members = await self.alerts.members(rec.group_id)
                    if all(m.state is AlertState.ACKNOWLEDGED for m in members if m.is_open):
                        await self.pager.ack(rec.group_id, by)
                    else:
                        await self.pager.changed(rec.group_id)
                    self._wake.set()
                return await self._must(alert_id)
        raise AlertError(f"Alert #{alert_id} keeps changing; try again.")

    async def ack_group(self, group_id: int, by: str) -> GroupRecord:
        """Acknowledge a group and every host in it: one ack stops the escalation for all."""
        group = await self._open_group(group_id)
        done = await self.pager.ack(group.id, by)
        if done is None:
            raise AlertError(f"Group {group.ref} keeps changing; try again.")
        self._wake.set()
        return done

    async def resolve(self, alert_id: int, by: str) -> AlertRecord:
        await self._open(alert_id)
        rec = await self._resolve(alert_id, by=by, why=f"resolved by hand by {by}")
        if rec is None:
            raise AlertError(f"Alert #{alert_id} is already resolved.")
        return rec

    async def resolve_group(self, group_id: int, by: str) -> GroupRecord:
        """Resolve every open host of the group by hand; the last one resolves the group."""
        group = await self._open_group(group_id)
        for rec in await self.alerts.members(group.id):
            if rec.is_open:
                await self._resolve(rec.id, by=by, why=f"resolved by hand by {by}")
        return await self._must_group(group.id)

    async def silence(
        self, matchers: dict[str, tuple[str, ...]], duration: timedelta, *, reason: str, by: str
    ) -> Silence:
        """Mute every alert whose labels fit all ``matchers`` (label → globs) for ``duration``."""
        now = self._clock.now()
        made = await self.silences.add(
            matchers=matchers, ends_at=now + duration, reason=reason, by=by, now=now
        )
        await self._recheck()
        return made

    async def unsilence(self, silence_id: int, by: str) -> Silence | None:
        ended = await self.silences.cancel(silence_id, by=by, now=self._clock.now())
        if ended is not None:
            await self._recheck()
        return ended

    async def unsilence_host(self, host: str, by: str) -> int:
        """End the silences made for exactly this host (the old ``silence <host>`` form)."""
        ended = await self.silences.cancel_host(host, by=by, now=self._clock.now())
        if ended:
            await self._recheck()
        return ended

    async def mute_view(self) -> MuteView:
        return await mute_view(self.silences, self.alerts, self.inhibitions, self._clock.now())

    async def _recheck(self) -> None:
        """Silences changed: held alerts and groups look again now, pages show the new state."""
        now = self._now()
        groups: set[int] = set()
        for rec in await self.alerts.open_all():
            if rec.muted and rec.next_step_at is not None:
                await self.alerts.cas(rec.id, rec.version, next_step_at=now)
            if rec.group_id is not None:
                groups.add(rec.group_id)
        for group_id in sorted(groups):
            await self.pager.recheck(group_id)
        self._wake.set()

    async def _resolve(self, alert_id: int, *, by: str | None, why: str) -> AlertRecord | None:
        for _ in range(_CAS_RETRIES):
            rec = await self.alerts.get(alert_id)
            if rec is None or not rec.is_open:
                return None
            if await self.alerts.cas(
                rec.id,
                rec.version,
                state=AlertState.RESOLVED,
                resolved_at=self._now(),
                resolved_by=by,
                next_step_at=None,
            ):
                log.info("alert #%d resolved (%s)", alert_id, "grouped" if rec.group_id else "never paged")
                if rec.group_id is not None:
                    await self.pager.resolve_if_empty(rec.group_id, by=by, why=why)
                    self._wake.set()
                return await self.alerts.get(alert_id)
        raise AlertError(f"Alert #{alert_id} keeps changing; try again.")

    # ----- helpers -------------------------------------------------------------------------------
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

    async def _open_group(self, group_id: int) -> GroupRecord:
        group = await self.groups.get(group_id)
        if group is None:
            raise AlertError(f"No alert group g{group_id}.")
        if not group.is_open:
            raise AlertError(f"Group g{group_id} is already resolved.")
        return group

    async def _must_group(self, group_id: int) -> GroupRecord:
        group = await self.groups.get(group_id)
        if group is None:
            raise AlertError(f"No alert group g{group_id}.")
        return group

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
