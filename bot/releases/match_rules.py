"""Matching rules as data: the bundled ``bot/data/match_rules.yaml`` plus any files users add.

A rule names a condition a fix text can state (boot medium, platform, vendor, driver, device class,
feature), the patterns that find it, and the host facts that decide it. See the YAML file's header
for the fields. A user rule with the id of a bundled rule replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.model import FEATURES
from bot.rulefile import rule_entries, user_rules

ABSENT_CHOICES = ("false-if-known", "false", "unknown")


class MatchRuleError(ValueError):
    """A rule file is malformed; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class MatchRule:
    id: str
    kind: str
    label: str
    patterns: tuple[re.Pattern[str], ...]
    boot: frozenset[str] = frozenset()
    boot_maybe_drivers: frozenset[str] = frozenset()
    vendors: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    drivers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    not_tags: frozenset[str] = frozenset()
    absent: str = "false-if-known"
    supersedes: tuple[str, ...] = ()
    feature: str | None = None  # one of ``model.FEATURES``: the host fact that decides it when known

    @property
    def fact(self) -> str:
        """The host fact that is missing when this rule cannot be decided, in a phrase."""
        if self.feature:
            return f"{self.label} state"
        if self.boot:
            return f"boot device kind ({'/'.join(sorted(self.boot))})"
        if self.vendors or self.models:
            return "hardware make"
        if self.drivers:
            return "loaded drivers"
        return f"{self.label} ({'/'.join(sorted(self.tags)) or self.id} tag)"


@dataclass(frozen=True, slots=True)
class MatchRuleSet:
    rules: tuple[MatchRule, ...]

    @classmethod
    def bundled(cls) -> MatchRuleSet:
        text = resources.files("bot").joinpath("data/match_rules.yaml").read_text(encoding="utf-8")
        return cls(tuple(parse_rules(text, "bundled match_rules.yaml")))

    @classmethod
    def load(cls, extra_files: Iterable[str | Path] = ()) -> MatchRuleSet:
        """Bundled rules, then each user file in order (same id replaces)."""
        by_id = {rule.id: rule for rule in cls.bundled().rules}
        for rule in user_rules(extra_files, parse_rules, MatchRuleError):
            by_id[rule.id] = rule
        return cls(tuple(by_id.values()))


def _words(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value.lower(),)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v).lower() for v in value)
    raise MatchRuleError(f"{where}: expected a list of words, got {value!r}")


def _rule(entry: Any, where: str) -> MatchRule:
    if not isinstance(entry, Mapping) or not entry.get("id"):
        raise MatchRuleError(f"{where}: a rule needs at least an id and patterns")
    where = f"{where} ({entry['id']})"
    raw = entry.get("patterns") or []
    if not isinstance(raw, list):
        raw = [raw]
    patterns = []
    for pattern in raw:
        try:
            patterns.append(re.compile(str(pattern), re.IGNORECASE))
        except re.error as exc:
            raise MatchRuleError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
    if not patterns:
        raise MatchRuleError(f"{where}: no patterns")
    absent = str(entry.get("absent", "false-if-known"))
    if absent not in ABSENT_CHOICES:
        raise MatchRuleError(f"{where}: absent must be one of {', '.join(ABSENT_CHOICES)}")
    feature = entry.get("feature")
    if feature is not None and feature not in FEATURES:
        raise MatchRuleError(f"{where}: feature must be one of {', '.join(FEATURES)}")
    return MatchRule(
        id=str(entry["id"]),
        kind=str(entry.get("kind", "feature")),
        label=str(entry.get("label", entry["id"])),
        patterns=tuple(patterns),
        boot=frozenset(_words(entry.get("boot"), where)),
        boot_maybe_drivers=frozenset(_words(entry.get("boot_maybe_drivers"), where)),
        vendors=_words(entry.get("vendors"), where),
        models=_words(entry.get("models"), where),
        drivers=frozenset(_words(entry.get("drivers"), where)),
        tags=frozenset(_words(entry.get("tags"), where)),
        not_tags=frozenset(_words(entry.get("not_tags"), where)),
        absent=absent,
        supersedes=tuple(str(s) for s in entry.get("supersedes") or ()),
        feature=feature,
    )


def parse_rules(text: str, source: str) -> list[MatchRule]:
    entries = rule_entries(text, source, MatchRuleError)
    return [_rule(entry, f"{source}: rules[{i}]") for i, entry in enumerate(entries)]
