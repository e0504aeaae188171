"""On-call rotation (weekly/daily, local-time handoffs across DST, overrides), mentions and config errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.alerts.oncall import OnCallConfigError, mention, parse_oncall
from tests.alert_harness import ONCALL


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_weekly_rotation_hands_off_at_local_time_across_dst() -> None:
    policy = parse_oncall(ONCALL)
    assert policy.current(at("2021-08-24T12:00:00+00:00")).person == "ann"  # type: ignore[union-attr]
    assert policy.current(at("2021-08-30T06:59:00+00:00")).person == "ann"  # type: ignore[union-attr]
    assert policy.current(at("2021-08-30T07:00:00+00:00")).person == "bob"  # type: ignore[union-attr]
    # Berlin leaves summer time on 2021-10-31: the Monday 09:00 handoff is then 08:00 UTC
    before = policy.current(at("2021-11-01T07:30:00+00:00"))
    after = policy.current(at("2021-11-01T08:00:00+00:00"))
    assert before is not None and after is not None and before.person != after.person
    assert after.start == at("2021-11-01T08:00:00+00:00")


def test_daily_rotation_and_override() -> None:
    policy = parse_oncall(
        {
            **ONCALL,
            "timezone": "UTC",
            "rotation": {"members": ["ann", "bob"], "handoff": "daily", "at": "08:00", "start": "2021-08-01"},
            "overrides": [{"person": "cy", "start": "2021-08-24 10:00", "end": "2021-08-24 18:00"}],
        }
    )
    assert policy.current(at("2021-08-01T08:00:00+00:00")).person == "ann"  # type: ignore[union-attr]
    assert policy.current(at("2021-08-02T07:59:00+00:00")).person == "ann"  # type: ignore[union-attr]
    assert policy.current(at("2021-08-02T08:00:00+00:00")).person == "bob"  # type: ignore[union-attr]
    shift = policy.current(at("2021-08-24T12:00:00+00:00"))
    assert shift is not None and shift.person == "cy" and shift.override
    upcoming = policy.upcoming(at("2021-08-24T09:00:00+00:00"))
    assert upcoming is not None and upcoming.person == "cy" and upcoming.override
    levels = policy.snapshot(at("2021-08-24T12:00:00+00:00"))
    assert [lvl["label"] for lvl in levels] == ["room", "on-call", "next level"]
    assert levels[1]["people"][0]["name"] == "cy" and levels[2]["after"] == 600.0


def test_mention_syntax_per_platform() -> None:
    ids = {"slack": "U0ANN", "matrix": "@ann:example.org", "console": "ann"}
    assert mention("slack", ids, "ann") == "<@U0ANN>"
    assert mention("matrix", ids, "ann") == "@ann:example.org"
    assert mention("console", ids, "ann") == "@ann"
    assert mention("irc", ids, "ann") == "ann"


def test_no_config_notifies_the_room_only() -> None:
    policy = parse_oncall(None)
    assert policy.current(at("2021-08-24T12:00:00+00:00")) is None
    assert policy.snapshot(at("2021-08-24T12:00:00+00:00")) == [{"after": 0.0, "label": "room", "people": []}]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"rotation": {"members": []}}, "at least one"),
        ({"rotation": {"members": ["x"], "handoff": "hourly"}}, "daily or weekly"),
        ({"escalation": [{"notify": "oncall", "after": "soon"}]}, "not a duration"),
        ({"escalation": [{"after": "10m"}, {"after": "5m"}]}, "must not be before"),
        ({"overrides": [{"person": "a", "start": "tomorrow", "end": "x"}]}, "not a date"),
        ({"people": ["ann"]}, "expected a mapping"),
    ],
)
def test_config_errors_name_the_setting(section: dict[str, object], message: str) -> None:
    with pytest.raises(OnCallConfigError, match=message):
        parse_oncall(section)
