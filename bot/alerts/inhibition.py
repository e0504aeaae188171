"""Inhibition rules as data: an open alert of one kind holds back related alerts.

The bundled rules live in ``bot/data/inhibit_rules.yaml``; users add files of the same shape
(``alerts.inhibit_rule_files``) and a user rule with a bundled rule's id replaces it, as for log rules.
``InhibitRuleSet.inhibitor`` answers, for one alert's labels and the open alerts, which alert holds it
back and by which rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.alerts.labels import Labels, Matcher, MatcherError, check_label, matchers_from_mapping, matches_all
from bot.rulefile import rule_entries, user_rules

_BUNDLED = "inhibit_rules.yaml"
_FIELDS = frozenset({"id", "description", "source", "target", "equal"})


class InhibitRuleError(ValueError):
    """A rule file is unreadable or a rule in it is malformed; the message names file and rule."""


@dataclass(frozen=True, slots=True)
class InhibitRule:
    id: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
    description: str = ""

    def holds_back(self, source: Labels, target: Labels) -> bool:
        if not matches_all(self.source, source) or not matches_all(self.target, target):
            return False
        return all(source.get(name) and source.get(name) == target.get(name) for name in self.equal)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """What inhibition needs of an open alert."""

    id: int
    labels: Labels


def _rule(raw: Any, where: str) -> InhibitRule:
    if not isinstance(raw, Mapping):
        raise InhibitRuleError(f"{where}: a rule must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise InhibitRuleError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if not raw.get("id"):
        raise InhibitRuleError(f"{where}: missing field 'id'")
    rule_id = str(raw["id"])
    if "source" not in raw or "target" not in raw:
        raise InhibitRuleError(f"{where} ({rule_id}): needs both 'source' and 'target'")
    equal = raw.get("equal") or []
    if isinstance(equal, str) or not isinstance(equal, list):
        raise InhibitRuleError(f"{where} ({rule_id}): equal must be a list of labels")
    try:
        source = matchers_from_mapping(raw["source"], f"{where} ({rule_id}) source")
        target = matchers_from_mapping(raw["target"], f"{where} ({rule_id}) target")
        labels = tuple(check_label(str(name), f"{where} ({rule_id}) equal") for name in equal)
    except MatcherError as exc:
        raise InhibitRuleError(str(exc)) from None
    if not source:
        raise InhibitRuleError(f"{where} ({rule_id}): an empty source would let every alert inhibit")
    return InhibitRule(rule_id, source, target, labels, str(raw.get("description", "")))


def parse_inhibit_rules(text: str, source: str) -> list[InhibitRule]:
    entries = rule_entries(text, source, InhibitRuleError)
    return [_rule(entry, f"{source} rule #{i + 1}") for i, entry in enumerate(entries)]


def load_inhibit_rules(extra_files: Iterable[Path] = ()) -> InhibitRuleSet:
    """The bundled rules, then each user file in order (a rule with an existing id replaces it)."""
    text = resources.files("bot").joinpath("data", _BUNDLED).read_text(encoding="utf-8")
    by_id = {rule.id: rule for rule in parse_inhibit_rules(text, f"bundled {_BUNDLED}")}
    for rule in user_rules(extra_files, parse_inhibit_rules, InhibitRuleError):
        by_id.pop(rule.id, None)
        by_id[rule.id] = rule
    return InhibitRuleSet(tuple(by_id.values()))


class InhibitRuleSet:
    __slots__ = ("rules",)

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self.rules: tuple[InhibitRule, ...] = tuple(rules)

    def inhibitor(
        self, alert_id: int, labels: Labels, open_alerts: Iterable[OpenAlert]
    ) -> tuple[InhibitRule, OpenAlert] | None:
        """The first (rule, open alert) that holds this alert back; None when nothing does."""
        candidates = [a for a in open_alerts if a.id != alert_id]
        for rule in self.rules:
            if not matches_all(rule.target, labels):
                continue
            for source in candidates:
                if rule.holds_back(source.labels, labels):
                    return rule, source
        return None
