"""Fix × host → verdict with reasons. Pure: no I/O, no clock; rules and the build catalog are passed in.

Verdicts: ``fixed`` (the host build already contains the release), ``not-affected`` (a condition of the
fix text is known false for the host, or the host runs an older product line than the release: see
``bot.releases.release_conditions``), ``affected`` (every condition known true and the host lacks the
release), ``possibly-affected`` (anything else: an unknown condition, no recognised condition, or a
build whose containment cannot be decided).

Speed: a release is matched against a fleet with ``match_release``. Conditions are extracted once per
fix; the fleet's facts are indexed once as bitsets over host positions (``bot.releases.fact_index``), so each
condition's true/false host sets and then each fix's verdict sets are a few integer operations, whatever
the hosts look like. Reasons are sentences built only for the pairs someone reads (``FixMatches.groups``,
``outcome``, ``ReleaseMatches.matches``), with the same code ``match`` uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress

from bot.builds import BuildCatalog, Containment
from bot.model import BootKind, Fix, Host, Match, Release, Verdict
from bot.releases.fact_index import FactIndex, rule_bits
from bot.releases.match_rules import MatchRule, MatchRuleSet
from bot.releases.release_conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    NamedReleases,
    SiblingFixes,
    evaluate_releases,
    named_releases,
    older_line,
)

_FLASH = frozenset({"usb", "sd"})

RELEASE_FACT = "the release the host runs"
NO_CONDITION = "no condition esxbot recognises"


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a fix text states about the hosts it concerns."""

    rules: tuple[MatchRule, ...]
    releases: NamedReleases | None  # releases the text names, other than the release itself
    unknowns: tuple[str, ...] = ()  # per condition (rules, then releases): "vSAN state unknown"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()  # possibly-affected: what would decide it ("vSAN state unknown")


def conditions(fix: Fix, rules: MatchRuleSet, *, release_name: str | None = None) -> Conditions:
    text = f"{fix.title}\n{fix.text}"
    found = [rule for rule in rules.rules if any(p.search(text) for p in rule.patterns)]
    dropped = {rid for rule in found for rid in rule.supersedes}
    kept = tuple(rule for rule in found if rule.id not in dropped)
    named = named_releases(text, exclude=release_name)
    unknowns = tuple(f"{rule.fact} unknown" for rule in kept) + (
        (f"{RELEASE_FACT} unknown",) if named else ()
    )
    return Conditions(kept, named, unknowns)


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


def evaluate(rule: MatchRule, facts: HostFacts) -> tuple[str, str]:
    """One condition on one host: (true|false|unknown, the sentence that says why)."""
    host, tags, drivers = facts.host, facts.tags, facts.drivers
    boot = host.boot_device
    if tags & rule.not_tags:
        return FALSE, f"fix concerns {rule.label}; host is tagged {', '.join(sorted(tags & rule.not_tags))}"
    if tags & rule.tags:
        return TRUE, f"fix concerns {rule.label}; host is tagged {', '.join(sorted(tags & rule.tags))}"
    fact = host.features.get(rule.feature) if rule.feature else None
    if fact is not None:
        if fact.present:
            return TRUE, f"fix concerns {rule.label}; host uses it ({fact.source})"
        return FALSE, f"fix concerns {rule.label}; host does not use it ({fact.source})"
    if rule.boot and boot.kind.value in rule.boot:
        return TRUE, f"host boots from {boot.describe()}"
    if drivers & rule.drivers:
        names = ", ".join(f"{d} {host.drivers.get(d, '')}".strip() for d in sorted(drivers & rule.drivers))
        return TRUE, f"fix concerns {rule.label}; host loads {names}"
    if any(v in facts.vendor for v in rule.vendors) or any(m in facts.model for m in rule.models):
        return TRUE, f"fix concerns {rule.label}; host is {_hardware(host)}"
    return _absent(rule, host, drivers)


def _absent(rule: MatchRule, host: Host, drivers: frozenset[str]) -> tuple[str, str]:
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


def combine(
    containment: Containment | None,
    states: Sequence[tuple[str, str]],
    has_conditions: bool,
    unknowns: Sequence[str] = (),
) -> Outcome:
    """The verdict from containment and condition states; ``unknowns`` says, per state, what an
    unknown one misses (for ``Outcome.missing``)."""
    if containment is not None and containment.contained:
        return Outcome(Verdict.FIXED, (containment.reason,))
    build_reason = containment.reason if containment is not None else "host build is unknown"
    false = [reason for state, reason in states if state == FALSE]
    if false:
        return Outcome(Verdict.NOT_AFFECTED, tuple(false))
    reasons = (*(reason for _, reason in states), build_reason)
    if containment is None:
        build_missing: tuple[str, ...] = ("host build unknown",)
    elif containment.contained is None:
        build_missing = ("whether the build already has the fix unknown",)
    else:
        build_missing = ()
    if not has_conditions:
        reasons = ("the fix text names no condition esxbot recognises", build_reason)
        return Outcome(Verdict.POSSIBLY_AFFECTED, reasons, (NO_CONDITION, *build_missing))
    if containment is not None and containment.contained is False and all(s == TRUE for s, _ in states):
        return Outcome(Verdict.AFFECTED, reasons)
    missing = tuple(
        dict.fromkeys(
            phrase for (state, _), phrase in zip(states, unknowns, strict=False) if state == UNKNOWN
        )
    )
    return Outcome(Verdict.POSSIBLY_AFFECTED, reasons, (*missing, *build_missing))


def _containment(host: Host, release: Release, catalog: BuildCatalog) -> Containment | None:
    if host.build is None:
        return None
    return catalog.contains(host.build, release, host_version=host.version)


def match(
    fix: Fix,
    host: Host,
    release: Release,
    rules: MatchRuleSet,
    catalog: BuildCatalog,
    *,
    others: Sequence[Release] = (),
) -> Match:
    """One pair, for ``pr <number>`` and tests; fleets go through ``match_release``. ``others``: further
    known releases, to name where a fix for an older line was published."""
    older = older_line(host, release, catalog)
    if older is not None:
        reason = SiblingFixes(others).line_reason(older, fix.pr, host, catalog)
        return Match(fix.pr, host.name, Verdict.NOT_AFFECTED, (reason,), release.name, release.build)
    found = conditions(fix, rules, release_name=release.name)
    facts = HostFacts.of(host)
    states = [evaluate(rule, facts) for rule in found.rules]
    if found.releases:
        states.append(evaluate_releases(found.releases, host, catalog))
    outcome = combine(_containment(host, release, catalog), states, bool(states), found.unknowns)
    return Match(fix.pr, host.name, outcome.verdict, outcome.reasons, release.name, release.build)


_BITS = bytes.maketrans(b"01", b"\x00\x01")
VERDICT_ORDER = (Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED, Verdict.NOT_AFFECTED, Verdict.FIXED)


class _Explainer:
    """Reasons for one release on one fleet, built only for the pairs someone reads.

    States are cached per (condition, host) and containment per build, so explaining many fixes that
    share conditions costs one ``evaluate`` per condition and host.
    """

    def __init__(
        self,
        release: Release,
        hosts: Sequence[Host],
        rules: MatchRuleSet,
        catalog: BuildCatalog,
        siblings: SiblingFixes,
    ) -> None:
        self.release = release
        self.hosts = hosts
        self.names = [host.name for host in hosts]
        self._rules = rules
        self._catalog = catalog
        self._siblings = siblings
        self._facts: dict[int, HostFacts] = {}
        self._states: dict[tuple[object, int], tuple[str, str]] = {}
        self._containment: dict[tuple[int | None, str | None], Containment | None] = {}
        self._older: dict[tuple[int | None, str | None], str | None] = {}

    def positions(self, bits: int) -> Iterator[int]:
        return compress(range(len(self.hosts)), self.flags(bits))

    def flags(self, bits: int) -> bytes:
        return format(bits, f"0{len(self.hosts)}b")[::-1].encode().translate(_BITS) if self.hosts else b""

    def containment(self, host: Host) -> Containment | None:
        key = (host.build, host.version)
        if key not in self._containment:
            self._containment[key] = _containment(host, self.release, self._catalog)
        return self._containment[key]

    def older_line(self, host: Host) -> str | None:
        key = (host.build, host.version)
        if key not in self._older:
            self._older[key] = older_line(host, self.release, self._catalog)
        return self._older[key]

    def outcome(self, fix: Fix, found: Conditions, position: int) -> Outcome:
        host = self.hosts[position]
        older = self.older_line(host)
        if older is not None:
            reason = self._siblings.line_reason(older, fix.pr, host, self._catalog)
            return Outcome(Verdict.NOT_AFFECTED, (reason,))
        states = [self._state(rule, position) for rule in found.rules]
        if found.releases:
            key = (found.releases, position)
            if key not in self._states:
                self._states[key] = evaluate_releases(found.releases, host, self._catalog)
            states.append(self._states[key])
        return combine(self.containment(host), states, bool(states), found.unknowns)

    def _state(self, rule: MatchRule, position: int) -> tuple[str, str]:
        key = (rule, position)
        state = self._states.get(key)
        if state is None:
            facts = self._facts.get(position)
            if facts is None:
                facts = self._facts[position] = HostFacts.of(self.hosts[position])
            state = self._states[key] = evaluate(rule, facts)
        return state


@dataclass(frozen=True, slots=True)
class FixMatches:
    """One fix against a fleet: the hosts of each verdict as a bitset (in ``VERDICT_ORDER``).

    Host names come out in fleet order; reasons are built on demand by ``outcome``/``groups``.
    """

    fix: Fix
    conditions: Conditions
    bits: tuple[int, int, int, int]
    explainer: _Explainer = field(repr=False, compare=False)

    def hosts(self, *verdicts: Verdict) -> list[str]:
        names = self.explainer.names
        return [
            name
            for verdict in verdicts
            for name in compress(names, self.explainer.flags(self.bits[VERDICT_ORDER.index(verdict)]))
        ]

    def outcome(self, position: int) -> Outcome:
        return self.explainer.outcome(self.fix, self.conditions, position)

    @property
    def groups(self) -> tuple[tuple[Outcome, tuple[str, ...]], ...]:
        """Each distinct outcome (verdict and reasons) with its hosts; builds every reason of this fix."""
        merged: dict[Outcome, list[str]] = {}
        for bits in self.bits:
            for position in self.explainer.positions(bits):
                merged.setdefault(self.outcome(position), []).append(self.explainer.names[position])
        return tuple((outcome, tuple(hosts)) for outcome, hosts in merged.items())


@dataclass(frozen=True, slots=True)
class ReleaseMatches:
    release: Release
    fixes: tuple[FixMatches, ...]

    def matches(self) -> Iterator[Match]:
        """Every pair as a ``Match`` with its reasons."""
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


def match_release(
    release: Release,
    hosts: Sequence[Host],
    rules: MatchRuleSet,
    catalog: BuildCatalog,
    *,
    others: Sequence[Release] = (),
) -> ReleaseMatches:
    """Every fix of ``release`` against every host: the same verdicts as ``match`` per pair, by set
    arithmetic on host bitsets (conditions once per fix, facts once per host, no reasons)."""
    per_fix = [conditions(fix, rules, release_name=release.name) for fix in release.fixes]
    facts = FactIndex(hosts)
    explainer = _Explainer(release, hosts, rules, catalog, SiblingFixes(others))
    fixed = not_contained = older = 0
    named_sets = list(dict.fromkeys(c.releases for c in per_fix if c.releases))
    named_true = dict.fromkeys(named_sets, 0)
    named_false = dict.fromkeys(named_sets, 0)
    for build, version, release_name in facts.builds():
        bits = facts.bits("build", build, version, release_name)
        probe = Host("", build=build, version=version, release_name=release_name)
        if explainer.older_line(probe) is not None:
            older |= bits
            continue
        containment = explainer.containment(probe)
        if containment is not None and containment.contained:
            fixed |= bits
        elif containment is not None and containment.contained is False:
            not_contained |= bits
        for named in named_sets:
            state, _ = evaluate_releases(named, probe, catalog)
            if state == TRUE:
                named_true[named] |= bits
            elif state == FALSE:
                named_false[named] |= bits
    columns = {rule: rule_bits(rule, facts) for rule in dict.fromkeys(r for c in per_fix for r in c.rules)}
    open_hosts = facts.all & ~fixed & ~older
    results = []
    for fix, found in zip(release.fixes, per_fix, strict=True):
        cols = [columns[rule] for rule in found.rules]
        if found.releases:
            cols.append((named_true[found.releases], named_false[found.releases]))
        if not cols:
            results.append(FixMatches(fix, found, (0, open_hosts, older, fixed), explainer))
            continue
        any_false, all_true = 0, facts.all
        for true, false in cols:
            any_false |= false
            all_true &= true
        not_affected = (open_hosts & any_false) | older
        affected = open_hosts & ~any_false & not_contained & all_true
        possibly = open_hosts & ~any_false & ~affected
        results.append(FixMatches(fix, found, (affected, possibly, not_affected, fixed), explainer))
    return ReleaseMatches(release, tuple(results))
