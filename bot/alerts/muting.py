"""Why an alert is muted right now: a silence whose matchers fit its labels, or an inhibition rule.

A ``MuteView`` is built once per engine tick (the active silences and the open alerts, two queries)
and then answers for every alert of that tick without touching the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.alerts.inhibition import InhibitRuleSet, OpenAlert
from bot.alerts.labels import Matcher, matcher, matches_all
from bot.store.alert_records import AlertRecord, AlertRepo, Silence, SilenceRepo


def silence_matchers(silence: Silence) -> tuple[Matcher, ...]:
    return tuple(
        matcher(label, list(globs), f"silence #{silence.id}") for label, globs in silence.matchers.items()
    )


def describe_matchers(silence: Silence) -> str:
    return " ".join(m.text() for m in silence_matchers(silence))


@dataclass(frozen=True, slots=True)
class MuteView:
    silences: tuple[tuple[Silence, tuple[Matcher, ...]], ...]
    open_alerts: tuple[OpenAlert, ...]
    kinds: dict[int, str]
    rules: InhibitRuleSet

    def silenced_until(self, rec: AlertRecord) -> datetime | None:
        """When the last silence muting this alert ends (None: no silence mutes it)."""
        ends = [s.ends_at for s, matchers in self.silences if matches_all(matchers, rec.labels)]
        return max(ends) if ends else None

    def reason(self, rec: AlertRecord) -> str | None:
        for silence, matchers in self.silences:
            if matches_all(matchers, rec.labels):
                return (
                    f"silenced by {silence.created_by} until {silence.ends_at:%Y-%m-%d %H:%M} UTC"
                    f" (silence #{silence.id})"
                )
        found = self.rules.inhibitor(rec.id, rec.labels, self.open_alerts)
        if found is not None:
            rule, source = found
            return f"inhibited by alert #{source.id} ({self.kinds.get(source.id, '?')}, rule {rule.id})"
        return None


async def mute_view(
    silences: SilenceRepo, alerts: AlertRepo, rules: InhibitRuleSet, now: datetime
) -> MuteView:
    active = await silences.active(now)
    open_alerts: Sequence[AlertRecord] = await alerts.open_all()
    return MuteView(
        tuple((s, silence_matchers(s)) for s in active),
        tuple(OpenAlert(a.id, a.labels) for a in open_alerts),
        {a.id: a.kind for a in open_alerts},
        rules,
    )
