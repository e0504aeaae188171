"""Alert groups page, escalate, are acknowledged and resolve; their member alerts ride along.

A group collects ``group_wait`` after it opens, then pages every room subscribed to the alerts topic
once, mentioning the first levels of the on-call chain; later levels are mentioned in the page's thread
when their time comes, and the whole chain again every ``repeat_interval`` (or the on-call ``repeat``)
while nobody acknowledges. Hosts joining or recovering edit the page in place and are told in its
thread at most every ``group_interval``; a host joining an acknowledged group does not page again (it
is the same trouble) but the ack timeout still re-fires the group. Acknowledging the group acknowledges
its hosts; the group resolves when its last host does. PagerDuty and webhooks get one incident per
group (``dedup_key`` per group). Every step is a compare-and-set on the group's ``version`` together
with its outbox rows, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.alerts.intake import EngineConfig
from bot.alerts.muting import MuteView
from bot.alerts.oncall import OnCallPolicy
from bot.alerts.page import (
    FixHint,
    Member,
    member_state,
    mentions,
    note,
    notify_ids,
    page,
    pager_event,
    people_of,
)
from bot.chat.outbox import Outbox
from bot.messages import Reply, Style
from bot.model import AlertState, Host
from bot.store.alert_groups import GroupRecord, GroupRepo
from bot.store.alert_records import AlertRecord, AlertRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database
from bot.store.subscriptions import SubscriptionRepo

log = logging.getLogger(__name__)

_CAS_RETRIES = 5
_CLOSED = ("recovered", "resolved")


@dataclass(frozen=True, slots=True)
class Message:
    conversation: str
    reply: Reply
    key: str
    thread_of: str | None = None  # outbox key of the page whose thread this goes into
    edit_of: str | None = None


@dataclass(frozen=True, slots=True)
class GroupDeps:
    """What the group pager shares with the engine."""

    db: Database
    outbox: Outbox
    alerts: AlertRepo
    policy: OnCallPolicy
    config: EngineConfig
    host: Callable[[str], Host | None]
    fix_hint: FixHint
    now: Callable[[], datetime]


class GroupPager:
    def __init__(self, deps: GroupDeps) -> None:
        self._d = deps
        self.repo = GroupRepo(deps.db)
        self._subs = SubscriptionRepo(deps.db)
        self._outbox_rows = OutboxRepo(deps.db)

    # ----- membership ----------------------------------------------------------------------------
    async def members(self, group: GroupRecord, view: MuteView | None) -> list[Member]:
        return [
            Member(rec, self._d.host(rec.host), view.reason(rec) if view and rec.is_open else None)
            for rec in await self._d.alerts.members(group.id)
        ]

    async def changed(self, group_id: int) -> None:
        """A member joined, recovered or was acknowledged: show it within ``group_interval``."""
        for _ in range(_CAS_RETRIES):
            group = await self.repo.get(group_id)
            if group is None or not group.is_open or group.fired_at is None or group.update_at is not None:
                return
            last = group.updated_at or group.fired_at
            at = max(self._ts(), last + self._d.config.group_interval.total_seconds())
            if await self.repo.cas(group.id, group.version, update_at=at):
                return

    async def recheck(self, group_id: int) -> None:
        """Look at a held (muted) group now, and show its members' new state."""
        group = await self.repo.get(group_id)
        if group is not None and group.is_open:
            changes: dict[str, Any] = {"update_at": self._ts()} if group.fired_at is not None else {}
            if group.muted:
                changes["next_step_at"] = self._ts()
            if changes:
                await self.repo.cas(group.id, group.version, **changes)

    # ----- the scheduled step --------------------------------------------------------------------
    async def step(self, group_id: int, version: int, view: MuteView) -> bool:
        group = await self.repo.get(group_id)
        now = self._ts()
        if group is None or group.version != version or not group.is_open:
            return False
        step_due = group.next_step_at is not None and group.next_step_at <= now
        update_due = group.update_at is not None and group.update_at <= now
        if not step_due and not update_due:
            return False
        members = await self.members(group, view)
        down = [m for m in members if m.rec.is_open]
        if not down:
            return await self._resolve(group, members, by=None, why="every host recovered")
        active = [m for m in down if not m.muted]
        changes: dict[str, Any] = {}
        messages: list[Message] = []
        if step_due:
            if not active:
                held = down[0].muted if len(down) == 1 else f"all {len(down)} hosts are muted"
                changes = {"muted": held, "next_step_at": now + self._d.config.recheck.total_seconds()}
            elif group.state is AlertState.PENDING:
                return await self._fire(group, members, now, refire=False)
            elif group.state is AlertState.ACKNOWLEDGED:
                return await self._fire(group, members, now, refire=True)
            else:
                changes, messages = self._escalation(group, members, now)
        if update_due:
            more_changes, more = self._update(group, members, now, changes)
            changes |= more_changes
            messages += more
        return await self._apply(group, messages, **changes)

    async def _fire(self, group: GroupRecord, members: list[Member], now: float, *, refire: bool) -> bool:
        levels = self._d.policy.snapshot(self._d.now())
        first = [i for i, lvl in enumerate(levels) if float(lvl["after"]) <= 0] or [0]
        step = max(first) + 1
        changes: dict[str, Any] = {
            "state": AlertState.FIRING,
            "fired_at": now,
            "policy": levels,
            "escalation_step": step,
            "next_step_at": self._next_at(levels, step, now, now),
            "update_at": None,
            "updated_at": now,
            "shown": _shown(members),
            "muted": None,
            "acked_by": None,
            "acked_at": None,
        }
        paging = people_of(levels, first)
        messages: list[Message] = []
        acked = [m.rec for m in members if m.rec.state is AlertState.ACKNOWLEDGED]
        if refire:  # the acknowledgement timed out for the hosts it covered too
            members = [
                replace(m, rec=replace(m.rec, state=AlertState.FIRING, acked_by=None))
                if m.rec.state is AlertState.ACKNOWLEDGED
                else m
                for m in members
            ]
            changes["shown"] = _shown(members)
        if refire and group.page_key:
            after = _with(group, changes)
            messages += self._page_edits(after, members, paging)
            text = f"the acknowledgement by {group.acked_by} timed out; firing again."
            messages += self._notes(after, members, text, Style.ERROR, paging)
        else:
            rooms = await self._subs.rooms(self._d.config.topic)
            if not rooms:
                log.warning(
                    "alert group %s fires but no room subscribes to %r", group.ref, self._d.config.topic
                )
            base = f"group:{group.id}:page"
            changes |= {"page_key": base, "page_rooms": rooms}
            after = _with(group, changes)
            for room in rooms:
                reply = page(
                    after,
                    members,
                    _platform(room),
                    now=self._d.now(),
                    paging=paging,
                    fix_hint=self._d.fix_hint,
                )
                messages.append(Message(room, reply, f"{base}@{room}"))
            log.info("alert group %s fires: %d hosts (%s)", group.ref, len(members), group.group_key)
        messages += self._forward(_with(group, changes), members, "trigger")
        rearm = {"state": AlertState.FIRING, "acked_by": None, "acked_at": None}
        return await self._apply(
            group, messages, members=acked if refire else (), member_changes=rearm, **changes
        )

    def _escalation(
        self, group: GroupRecord, members: list[Member], now: float
    ) -> tuple[dict[str, Any], list[Message]]:
        levels: list[dict[str, Any]] = list(group.policy or [])
        step = group.escalation_step
        fired = group.fired_at or now
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
        return changes, self._notes(_with(group, changes), members, text, Style.ERROR, who)

    def _update(
        self, group: GroupRecord, members: list[Member], now: float, pending: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Message]]:
        """Show who joined and who recovered since the page last changed (``pending``: the step's)."""
        shown = _shown(members)
        changes: dict[str, Any] = {"update_at": None}
        if group.fired_at is None or shown == group.shown:
            return changes, []
        changes |= {"updated_at": now, "shown": shown}
        after = _with(group, pending | changes)
        by_id = {str(m.rec.id): m for m in members}
        joined = [by_id[i].rec.host for i in shown if i not in group.shown]
        recovered = [
            by_id[i].rec.host
            for i, state in shown.items()
            if state.startswith(_CLOSED) and not group.shown.get(i, "down").startswith(_CLOSED)
        ]
        parts = []
        if joined:
            parts.append(f"{len(joined)} more {_hosts(len(joined))}: {_names(joined)}.")
        if recovered:
            parts.append(f"{len(recovered)} recovered: {_names(recovered)}.")
        messages = self._page_edits(after, members)
        if parts:
            down = sum(1 for m in members if m.rec.is_open)
            parts.append(f"{down} of {len(members)} still down.")
            messages += self._notes(after, members, " ".join(parts), Style.WARNING)
        return changes, messages

    def _next_at(self, levels: Sequence[dict[str, Any]], step: int, fired: float, now: float) -> float | None:
        if step < len(levels):
            return max(now, fired + float(levels[step]["after"]))
        repeat = self._d.config.repeat_interval or self._d.policy.repeat
        return now + repeat.total_seconds() if repeat else None

    # ----- people's actions ----------------------------------------------------------------------
    async def ack(self, group_id: int, by: str) -> GroupRecord | None:
        """Acknowledge the group and its hosts; None when it keeps changing under us."""
        for _ in range(_CAS_RETRIES):
            group = await self.repo.get(group_id)
            if group is None or not group.is_open:
                return group
            now = self._ts()
            timeout = self._d.policy.ack_timeout
            changes: dict[str, Any] = {
                "state": AlertState.ACKNOWLEDGED,
                "acked_by": by,
                "acked_at": now,
                "next_step_at": now + timeout.total_seconds() if timeout else None,
                "muted": None,
            }
            members = await self.members(group, None)
            acked = [
                replace(m, rec=replace(m.rec, state=AlertState.ACKNOWLEDGED, acked_by=by))
                if m.rec.state is AlertState.FIRING
                else m
                for m in members
            ]
            after = _with(group, changes | {"shown": _shown(acked)})
            down = sum(1 for m in members if m.rec.is_open)
            text = f"acknowledged by {by}" + (f" ({down} hosts)." if len(members) > 1 else ".")
            messages = self._page_edits(after, acked) + self._notes(after, acked, text, Style.SUCCESS)
            if group.fired_at is not None:
                messages += self._forward(after, acked, "acknowledge")
            firing = [m.rec for m in members if m.rec.state is AlertState.FIRING]
            member_changes = {"state": AlertState.ACKNOWLEDGED, "acked_by": by, "acked_at": now}
            if await self._apply(
                group, messages, members=firing, member_changes=member_changes, shown=_shown(acked), **changes
            ):
                return await self.repo.get(group_id)
        return None

    async def resolve_if_empty(self, group_id: int, *, by: str | None, why: str) -> None:
        group = await self.repo.get(group_id)
        if group is None or not group.is_open:
            return
        members = await self.members(group, None)
        if any(m.rec.is_open for m in members):
            await self.changed(group_id)
            return
        for _ in range(_CAS_RETRIES):
            if await self._resolve(group, members, by=by, why=why):
                return
            fresh = await self.repo.get(group_id)
            if fresh is None or not fresh.is_open:
                return
            group = fresh

    async def _resolve(self, group: GroupRecord, members: list[Member], *, by: str | None, why: str) -> bool:
        now = self._ts()
        changes: dict[str, Any] = {
            "state": AlertState.RESOLVED,
            "resolved_at": now,
            "resolved_by": by,
            "next_step_at": None,
            "update_at": None,
            "shown": _shown(members),
        }
        after = _with(group, changes)
        messages: list[Message] = []
        if group.fired_at is not None:
            text = f"resolved by {by}." if by else f"resolved: the condition cleared ({why[:300]})."
            messages = self._page_edits(after, members) + self._notes(after, members, text, Style.SUCCESS)
            messages += self._forward(after, members, "resolve")
        done = await self._apply(group, messages, **changes)
        if done:
            log.info("alert group %s resolved (%s)", group.ref, "paged" if group.fired_at else "never paged")
        return done

    # ----- writing -------------------------------------------------------------------------------
    async def _apply(
        self,
        group: GroupRecord,
        messages: Sequence[Message],
        *,
        members: Sequence[AlertRecord] = (),
        member_changes: dict[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """Compare-and-set the group (and ``member_changes`` on ``members``), queue its messages, at once."""
        async with self._d.db.transaction():
            if not await self.repo.cas(group.id, group.version, **changes):
                return False
            for rec in members:  # a member changed meanwhile keeps its newer state
                await self._d.alerts.cas(rec.id, rec.version, **(member_changes or {}))
            for m in messages:
                thread = await self._outbox_rows.message_id(m.thread_of) if m.thread_of else None
                await self._d.outbox.enqueue(
                    m.conversation, m.reply, thread=thread, key=m.key, edit_of=m.edit_of
                )
        return True

    def _page_edits(
        self, group: GroupRecord, members: list[Member], paging: Sequence[Any] = ()
    ) -> list[Message]:
        if not group.page_key:
            return []
        return [
            Message(
                room,
                page(
                    group,
                    members,
                    _platform(room),
                    now=self._d.now(),
                    paging=paging,
                    fix_hint=self._d.fix_hint,
                ),
                f"group:{group.id}:v{group.version}:edit@{room}",
                edit_of=f"{group.page_key}@{room}",
            )
            for room in group.page_rooms
        ]

    def _notes(
        self, group: GroupRecord, members: list[Member], text: str, style: Style, who: Sequence[Any] = ()
    ) -> list[Message]:
        if not group.page_key:
            return []
        out = []
        for room in group.page_rooms:
            platform = _platform(room)
            named = mentions(who, platform)
            notify = notify_ids(who, platform)
            out.append(
                Message(
                    room,
                    note(group, members, f"{text} {named}".strip(), style=style, notify=notify),
                    f"group:{group.id}:v{group.version}:note@{room}",
                    thread_of=f"{group.page_key}@{room}",
                )
            )
        return out

    def _forward(self, group: GroupRecord, members: list[Member], action: str) -> list[Message]:
        return [
            Message(
                target,
                pager_event(group, members, action),
                f"group:{group.id}:v{group.version}:{action}@{target}",
            )
            for target in self._d.config.forward_to
        ]

    def _ts(self) -> float:
        return self._d.now().timestamp()


def _platform(room: str) -> str:
    return room.split(":", 1)[0]


def _shown(members: Sequence[Member]) -> dict[str, str]:
    return {str(m.rec.id): member_state(m) for m in members}


def _hosts(n: int) -> str:
    return "host" if n == 1 else "hosts"


def _names(hosts: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(hosts[:limit])
    return shown + (f" and {len(hosts) - limit} more" if len(hosts) > limit else "")


def _with(group: GroupRecord, changes: dict[str, Any]) -> GroupRecord:
    """The record as it will be after ``changes`` (for texts built before the write)."""
    fields = dict(changes)
    if "page_rooms" in fields:
        fields["page_rooms"] = tuple(fields["page_rooms"])
    return replace(group, **fields, version=group.version + 1)
