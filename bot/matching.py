"""Fix × host → verdict with reasons. Pure: no I/O, no clock; rules and the build catalog are passed in.

Verdicts: ``fixed`` (the host build already contains the release), ``not-affected`` (a condition of the
fix text is known false for the host), ``affected`` (every condition known true and the host lacks the
release), ``possibly-affected`` (anything else: an unknown condition, no recognised condition, or a
build whose containment cannot be decided).

Speed: a release is matched against a fleet with ``match_release``. Conditions are extracted once per
fix; each host's facts are evaluated once per rule the release uses; the verdict of a pair is looked up
by (containment, condition states), so the per-pair work is one small tuple and one dict lookup.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.esxi import BuildCatalog, Containment
from bot.match_rules import Rule, RuleSet
from bot.model import BootKind, Fix, Host, Match, Release, Verdict

_RELEASE_RE = re.compile(r"\bESXi\s+(\d\.\d)(?:\s*(?:Update|U)\s*(\d[a-z]?)\b|([a-z])\b)?", re.IGNORECASE)
_FLASH = frozenset({"usb", "sd"})

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a fix text states about the hosts it concerns."""

    rules: tuple[Rule, ...]
    releases: frozenset[str]  # release names the text mentions, other than the release itself


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FixMatches:
    """One fix against a fleet: each distinct outcome with the hosts that share it."""

    fix: Fix
    groups: tuple[tuple[Outcome, tuple[str, ...]], ...]

    def hosts(self, *verdicts: Verdict) -> list[str]:
        return [h for outcome, hosts in self.groups if outcome.verdict in verdicts for h in hosts]


@dataclass(frozen=True, slots=True)
class ReleaseMatches:
    release: Release
    fixes: tuple[FixMatches, ...]

    def matches(self) -> Iterator[Match]:
        for fix_matches in self.fixes:
            for outcome, hosts in fix_matches.groups:
                for host in hosts:
                    yield Match(
                        fix_matches.fix.pr,
                        host,
                        outcome.verdict,
                        outcome.reasons,
                        self.release.name,
                        self.release.build,
                    )


def release_names(text: str, *, exclude: str | None = None) -> frozenset[str]:
    names = set()
    for m in _RELEASE_RE.finditer(text):
        line, update, letter = m.groups()
        names.add(
            f"ESXi {line} Update {update.lower()}" if update else f"ESXi {line}{(letter or '').lower()}"
        )
    names.discard(exclude or "")
    return frozenset(n for n in names if re.search(r"Update|\d[a-z]$", n))


def conditions(fix: Fix, rules: RuleSet, *, release_name: str | None = None) -> Conditions:
    text = f"{fix.title}\n{fix.text}"
    found = [rule for rule in rules.rules if any(p.search(text) for p in rule.patterns)]
    dropped = {rid for rule in found for rid in rule.supersedes}
    kept = tuple(rule for rule in found if rule.id not in dropped)
    return Conditions(kept, release_names(text, exclude=release_name))


def _hardware(host: Host) -> str:
    """``a Dell Inc. PowerEdge R640`` / ``an Intel NUC10i7FNH`` / ``a host of unknown make``."""
    name = " ".join(p for p in (host.vendor, host.model) if p) or "host of unknown make"
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The host facts rules look at, normalised once per host."""

    host: Host
    tags: frozenset[str]
    drivers: frozenset[str]  # loaded drivers plus the boot driver
    vendor: str
    model: str

    @classmethod
    def of(cls, host: Host) -> HostFacts:
        drivers = {d.lower() for d in host.drivers}
        if host.boot_device.driver:
            drivers.add(host.boot_device.driver.lower())
        return cls(
            host,
            frozenset(t.lower() for t in host.tags),
            frozenset(drivers),
            (host.vendor or "").lower(),
            (host.model or "").lower(),
        )


def evaluate(rule: Rule, facts: HostFacts) -> tuple[str, str]:
    """One condition on one host: (true|false|unknown, the sentence that says why)."""
    host, tags, drivers = facts.host, facts.tags, facts.drivers
    boot = host.boot_device
    if tags & rule.not_tags:
        return FALSE, f"fix concerns {rule.label}; host is tagged {', '.join(sorted(tags & rule.not_tags))}"
    if tags & rule.tags:
        return TRUE, f"fix concerns {rule.label}; host is tagged {', '.join(sorted(tags & rule.tags))}"
    if rule.boot and boot.kind.value in rule.boot:
        return TRUE, f"host boots from {boot.describe()}"
    if drivers & rule.drivers:
        names = ", ".join(f"{d} {host.drivers.get(d, '')}".strip() for d in sorted(drivers & rule.drivers))
        return TRUE, f"fix concerns {rule.label}; host loads {names}"
    if any(v in facts.vendor for v in rule.vendors) or any(m in facts.model for m in rule.models):
        return TRUE, f"fix concerns {rule.label}; host is {_hardware(host)}"
    return _absent(rule, host, drivers)


def _absent(rule: Rule, host: Host, drivers: frozenset[str]) -> tuple[str, str]:
    boot = host.boot_device
    if rule.absent == "false":
        tag = min(rule.tags, default=rule.id)
        return FALSE, f"fix concerns {rule.label}; host is {_hardware(host)} with no {tag} tag"
    if rule.boot:
        if boot.kind is BootKind.UNKNOWN:
            return UNKNOWN, f"fix concerns {rule.label}; the host's boot device is unknown"
        if boot.kind.value in _FLASH and (boot.driver or "").lower() in rule.boot_maybe_drivers:
            return UNKNOWN, (
                f"fix concerns {rule.label}; host boots from {boot.describe()}, and flash media on "
                f"{boot.driver} may be either"
            )
        if rule.absent == "false-if-known":
            return FALSE, f"fix concerns {rule.label}; host boots from {boot.describe()}"
    if rule.vendors or rule.models:
        if host.vendor is None and host.model is None:
            return UNKNOWN, f"fix concerns {rule.label}; the host's vendor is unknown"
        if rule.absent == "false-if-known":
            return FALSE, f"fix concerns {rule.label}; host is {_hardware(host)}"
    if rule.drivers and rule.absent == "false-if-known" and host.drivers:
        return FALSE, f"fix concerns {rule.label}; host loads none of {', '.join(sorted(rule.drivers))}"
    hint = f" (no {'/'.join(sorted(rule.tags))} tag)" if rule.tags else ""
    return UNKNOWN, f"fix concerns {rule.label}; whether the host uses it is unknown{hint}"


def evaluate_releases(named: frozenset[str], host: Host, catalog: BuildCatalog) -> tuple[str, str]:
    listed = ", ".join(sorted(named))
    known = catalog.lookup(host.build)
    running = known.name if known else host.release_name
    if running and running in named:
        return TRUE, f"fix names {listed}; host runs {running} (build {host.build})"
    lines = {re.sub(r"^ESXi (\d\.\d).*$", r"\1", n) for n in named}
    line = known.line if known else (".".join(host.version.split(".")[:2]) if host.version else None)
    if line and line not in lines:
        return FALSE, f"fix names {listed}; host runs ESXi {line}"
    return UNKNOWN, f"fix names {listed}; host runs {running or 'an unknown release'}"


def combine(
    containment: Containment | None, states: Sequence[tuple[str, str]], has_conditions: bool
) -> Outcome:
    if containment is not None and containment.contained:
        return Outcome(Verdict.FIXED, (containment.reason,))
    build_reason = containment.reason if containment is not None else "host build is unknown"
    false = [reason for state, reason in states if state == FALSE]
    if false:
        return Outcome(Verdict.NOT_AFFECTED, tuple(false))
    reasons = (*(reason for _, reason in states), build_reason)
    if not has_conditions:
        reasons = ("the fix text names no condition esxbot recognises", build_reason)
        return Outcome(Verdict.POSSIBLY_AFFECTED, reasons)
    if containment is not None and containment.contained is False and all(s == TRUE for s, _ in states):
        return Outcome(Verdict.AFFECTED, reasons)
    return Outcome(Verdict.POSSIBLY_AFFECTED, reasons)


def _containment(host: Host, release: Release, catalog: BuildCatalog) -> Containment | None:
    if host.build is None:
        return None
    return catalog.contains(host.build, release, host_version=host.version)


def match(fix: Fix, host: Host, release: Release, rules: RuleSet, catalog: BuildCatalog) -> Match:
    """One pair, for ``pr <number>`` and tests; fleets go through ``match_release``."""
    found = conditions(fix, rules, release_name=release.name)
    facts = HostFacts.of(host)
    states = [evaluate(rule, facts) for rule in found.rules]
    if found.releases:
        states.append(evaluate_releases(found.releases, host, catalog))
    outcome = combine(_containment(host, release, catalog), states, bool(states))
    return Match(fix.pr, host.name, outcome.verdict, outcome.reasons, release.name, release.build)


def match_release(
    release: Release, hosts: Sequence[Host], rules: RuleSet, catalog: BuildCatalog
) -> ReleaseMatches:
    """Every fix of ``release`` against every host, grouped by outcome."""
    per_fix = [conditions(fix, rules, release_name=release.name) for fix in release.fixes]
    used_rules = list(dict.fromkeys(rule for c in per_fix for rule in c.rules))
    used_named = list(dict.fromkeys(c.releases for c in per_fix if c.releases))
    rule_index = {rule: i for i, rule in enumerate(used_rules)}
    named_index = {named: len(used_rules) + i for i, named in enumerate(used_named)}
    interned: dict[tuple[str, str], tuple[str, str]] = {}
    by_build: dict[tuple[int | None, str | None], Containment | None] = {}
    rows: dict[tuple[object, ...], list[int]] = {}  # hosts with the same facts share one evaluation
    classes: dict[tuple[int, ...], list[str]] = {}  # (containment, states) → hosts: the unit of work
    for host in hosts:
        facts = HostFacts.of(host)
        signature = (
            facts.tags,
            facts.drivers,
            facts.vendor,
            facts.model,
            host.boot_device,
            tuple(sorted(host.drivers.items())),
            host.build,
            host.version,
            host.release_name,
        )
        row = rows.get(signature)
        if row is None:
            states = [evaluate(rule, facts) for rule in used_rules]
            states += [evaluate_releases(named, host, catalog) for named in used_named]
            row = rows[signature] = [id(interned.setdefault(state, state)) for state in states]
        build_key = (host.build, host.version)
        if build_key not in by_build:
            by_build[build_key] = _containment(host, release, catalog)
        classes.setdefault((id(by_build[build_key]), *row), []).append(host.name)
    state_of = {id(state): state for state in interned.values()}
    containment_of = {id(c): c for c in by_build.values()}
    outcomes: dict[tuple[int, ...], Outcome] = {}
    results = []
    for fix, found in zip(release.fixes, per_fix, strict=True):
        columns = [rule_index[rule] for rule in found.rules]
        if found.releases:
            columns.append(named_index[found.releases])
        flag = 1 if columns else 0
        groups: defaultdict[tuple[int, ...], list[str]] = defaultdict(list)
        # identity of interned states and shared Containment objects stands for their value
        for host_class, members in classes.items():
            groups[(host_class[0], *[host_class[c + 1] for c in columns])].extend(members)
        merged: dict[Outcome, list[str]] = {}
        for key, members in groups.items():
            cache_key = (flag, *key)
            outcome = outcomes.get(cache_key)
            if outcome is None:
                states = [state_of[state_id] for state_id in key[1:]]
                outcome = outcomes[cache_key] = combine(containment_of[key[0]], states, bool(flag))
            merged.setdefault(outcome, []).extend(members)
        results.append(FixMatches(fix, tuple((o, tuple(h)) for o, h in merged.items())))
    return ReleaseMatches(release, tuple(results))
