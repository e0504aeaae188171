"""Who is on call and whom to page when: a rotation, overrides, and an escalation chain, from config.

The YAML ``oncall:`` section (``settings.extra["oncall"]``)::

    oncall:
      timezone: Europe/Berlin
      people:
        ann: {slack: U024BE7LH, matrix: "@ann:example.org", console: ann}
        bob: {slack: U0G9QF9C6, matrix: "@bob:example.org"}
      rotation: {members: [ann, bob], handoff: weekly, day: monday, at: "09:00", start: 2024-01-01}
      overrides:
        - {person: bob, start: "2024-05-01 09:00", end: "2024-05-02 09:00"}
      escalation:
        - {notify: room}
        - {notify: oncall}
        - {notify: next, after: 10m}
        - {notify: [carol], after: 30m}
      repeat: 30m        # re-mention every level this often while nobody acknowledges
      ack_timeout: 4h    # an acknowledgement older than this re-fires the alert

Handoffs happen at local wall time in the rotation's time zone (so daylight saving does not shift
them). ``snapshot`` freezes the chain with the people it names at the moment an alert fires: later
config edits or handoffs do not change a running escalation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.durations import parse_duration
from bot.schema import refuse_unknown

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NOTIFY_ROOM, NOTIFY_ONCALL, NOTIFY_NEXT, NOTIFY_PEOPLE = "room", "oncall", "next", "people"


class OnCallConfigError(ValueError):
    """The ``oncall`` section is malformed; the message names the setting."""


def mention(platform: str, ids: Mapping[str, str], name: str) -> str:
    """How ``platform`` spells a mention of this person; their name when they have no id there."""
    ident = ids.get(platform)
    if not ident:
        return name
    if platform == "slack":
        return f"<@{ident.removeprefix('@')}>"
    if platform == "matrix":
        return ident  # the MXID in the body: clients pill it and the default push rules match it
    return f"@{ident.removeprefix('@')}"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    ids: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def mention(self, platform: str) -> str:
        return mention(platform, self.ids, self.name)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ids": dict(self.ids)}


@dataclass(frozen=True, slots=True)
class Override:
    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Shift:
    person: str
    start: datetime
    end: datetime
    override: bool = False


@dataclass(frozen=True, slots=True)
class Rotation:
    members: tuple[str, ...]
    tz: ZoneInfo
    handoff_at: time = time(9, 0)
    period_days: int = 7  # 1 daily, 7 weekly
    anchor: date = date(2024, 1, 1)  # a handoff day; the first member's shift starts here

    def _handoff(self, day: date) -> datetime:
        return datetime.combine(day, self.handoff_at, tzinfo=self.tz).astimezone(UTC)

    def shift(self, now: datetime, offset: int = 0) -> Shift:
        """The shift running at ``now`` (``offset`` 1: the one after it)."""
        local = now.astimezone(self.tz)
        day = local.date() if local.time() >= self.handoff_at else local.date() - timedelta(days=1)
        day -= timedelta(days=(day - self.anchor).days % self.period_days)
        day += timedelta(days=offset * self.period_days)
        index = (day - self.anchor).days // self.period_days
        person = self.members[index % len(self.members)]
        return Shift(person, self._handoff(day), self._handoff(day + timedelta(days=self.period_days)))


@dataclass(frozen=True, slots=True)
class Step:
    notify: str  # room | oncall | next | people
    after: timedelta = timedelta(0)
    people: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OnCallPolicy:
    people: Mapping[str, Person]
    rotation: Rotation | None
    overrides: tuple[Override, ...] = ()
    steps: tuple[Step, ...] = (Step(NOTIFY_ROOM), Step(NOTIFY_ONCALL))
    repeat: timedelta | None = timedelta(minutes=30)
    ack_timeout: timedelta | None = timedelta(hours=4)

    def _person(self, name: str) -> Person:
        return self.people.get(name) or Person(name)

    def current(self, now: datetime) -> Shift | None:
        for o in self.overrides:
            if o.start <= now < o.end:
                return Shift(o.person, o.start, o.end, override=True)
        return self.rotation.shift(now) if self.rotation else None

    def upcoming(self, now: datetime) -> Shift | None:
        """The next change of who is on call: an override starting, or the next rotation shift."""
        now_shift = self.current(now)
        if now_shift is None:
            return None
        later = [o for o in self.overrides if o.start > now]
        rotation_next = self.rotation.shift(now_shift.end) if self.rotation else None
        first = min(later, key=lambda o: o.start, default=None)
        if first is not None and (rotation_next is None or first.start <= rotation_next.start):
            return Shift(first.person, first.start, first.end, override=True)
        return rotation_next

    def secondary(self, now: datetime) -> Person | None:
        """Whoever follows the primary in the rotation (the "next level")."""
        if self.rotation is None or len(self.rotation.members) < 2:
            return None
        primary = self.current(now)
        following = self.rotation.shift(now, offset=1).person
        if primary is not None and following == primary.person:
            following = self.rotation.shift(now, offset=2).person
        return self._person(following)

    def snapshot(self, now: datetime) -> list[dict[str, Any]]:
        """The chain with its people resolved now; JSON, stored in the alert when it fires."""
        levels: list[dict[str, Any]] = []
        for step in self.steps:
            people: list[Person] = []
            label = step.notify
            if step.notify == NOTIFY_ONCALL:
                shift = self.current(now)
                people = [self._person(shift.person)] if shift else []
                label = "on-call"
            elif step.notify == NOTIFY_NEXT:
                nxt = self.secondary(now)
                people = [nxt] if nxt else []
                label = "next level"
            elif step.notify == NOTIFY_PEOPLE:
                people = [self._person(p) for p in step.people]
                label = "escalation"
            if step.notify != NOTIFY_ROOM and not people:
                continue
            levels.append(
                {
                    "after": step.after.total_seconds(),
                    "label": label,
                    "people": [p.as_json() for p in people],
                }
            )
        return levels or [{"after": 0.0, "label": NOTIFY_ROOM, "people": []}]


def _duration(raw: Any, where: str) -> timedelta:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return timedelta(seconds=float(raw))
    try:
        return parse_duration(str(raw))
    except ValueError:
        raise OnCallConfigError(f"{where}: {raw!r} is not a duration (30s, 10m, 4h)") from None


def _when(raw: Any, tz: ZoneInfo, where: str) -> datetime:
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        raise OnCallConfigError(f"{where}: {raw!r} is not a date and time (2024-05-01 09:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise OnCallConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: Any, where: str) -> Sequence[Any]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise OnCallConfigError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _rotation(raw: Mapping[str, Any], tz: ZoneInfo, people: Mapping[str, Person]) -> Rotation:
    refuse_unknown(raw, ("members", "handoff", "day", "at", "start"), "oncall.rotation")
    members = tuple(str(m) for m in _list(raw.get("members"), "oncall.rotation.members"))
    if not members:
        raise OnCallConfigError("oncall.rotation.members: name at least one person")
    unknown = [m for m in members if m not in people]
    if unknown and people:
        raise OnCallConfigError(f"oncall.rotation.members: not in oncall.people: {', '.join(unknown)}")
    handoff = str(raw.get("handoff", "weekly")).lower()
    if handoff not in ("daily", "weekly"):
        raise OnCallConfigError(f"oncall.rotation.handoff: daily or weekly, not {handoff!r}")
    try:
        at = time.fromisoformat(str(raw.get("at", "09:00")))
        start = date.fromisoformat(str(raw.get("start", "2024-01-01")))
    except ValueError as exc:
        raise OnCallConfigError(f"oncall.rotation: {exc}") from None
    if handoff == "weekly":
        day = str(raw.get("day", WEEKDAYS[start.weekday()])).lower()
        if day not in WEEKDAYS:
            raise OnCallConfigError(f"oncall.rotation.day: a weekday name, not {day!r}")
        start += timedelta(days=(WEEKDAYS.index(day) - start.weekday()) % 7)
    return Rotation(members, tz, at, 1 if handoff == "daily" else 7, start)


def _step(raw: Any, index: int) -> Step:
    where = f"oncall.escalation[{index}]"
    item = _mapping(raw, where)
    refuse_unknown(item, ("notify", "after"), where)
    notify = item.get("notify", NOTIFY_ONCALL)
    after = _duration(item.get("after", 0), f"{where}.after")
    if isinstance(notify, list):
        return Step(NOTIFY_PEOPLE, after, tuple(str(p) for p in notify))
    if notify not in (NOTIFY_ROOM, NOTIFY_ONCALL, NOTIFY_NEXT):
        return Step(NOTIFY_PEOPLE, after, (str(notify),))
    return Step(str(notify), after)


def parse_oncall(raw: Any) -> OnCallPolicy:
    """The policy from the ``oncall`` section (None or empty: notify the room only, no mentions)."""
    section = _mapping(raw, "oncall")
    refuse_unknown(
        section,
        ("timezone", "people", "rotation", "overrides", "escalation", "repeat", "ack_timeout"),
        "oncall",
    )
    try:
        tz = ZoneInfo(str(section.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise OnCallConfigError(f"oncall.timezone: unknown time zone {section.get('timezone')!r}") from None
    people = {
        str(name): Person(
            str(name),
            MappingProxyType(
                {str(k): str(v) for k, v in _mapping(ids, f"oncall.people.{name}").items() if v}
            ),
        )
        for name, ids in _mapping(section.get("people"), "oncall.people").items()
    }
    rotation_raw = section.get("rotation")
    rotation = _rotation(_mapping(rotation_raw, "oncall.rotation"), tz, people) if rotation_raw else None
    for i, o in enumerate(_list(section.get("overrides"), "oncall.overrides")):
        where = f"oncall.overrides[{i}]"
        refuse_unknown(_mapping(o, where), ("person", "start", "end"), where)
    overrides = tuple(
        Override(
            str(_mapping(o, f"oncall.overrides[{i}]").get("person", "")),
            _when(o.get("start"), tz, f"oncall.overrides[{i}].start"),
            _when(o.get("end"), tz, f"oncall.overrides[{i}].end"),
        )
        for i, o in enumerate(_list(section.get("overrides"), "oncall.overrides"))
    )
    steps_raw = _list(section.get("escalation"), "oncall.escalation")
    steps = tuple(_step(s, i) for i, s in enumerate(steps_raw))
    if not steps:
        steps = (Step(NOTIFY_ROOM), Step(NOTIFY_ONCALL)) if rotation else (Step(NOTIFY_ROOM),)
    for a, b in pairwise(steps):
        if b.after < a.after:
            raise OnCallConfigError("oncall.escalation: each step's `after` must not be before the last one")
    repeat = section.get("repeat", "30m")
    ack_timeout = section.get("ack_timeout", "4h")
    return OnCallPolicy(
        people=MappingProxyType(people),
        rotation=rotation,
        overrides=overrides,
        steps=steps,
        repeat=None if repeat in (None, 0, "0", "never") else _duration(repeat, "oncall.repeat"),
        ack_timeout=(
            None if ack_timeout in (None, 0, "0", "never") else _duration(ack_timeout, "oncall.ack_timeout")
        ),
    )
