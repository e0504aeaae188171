"""Advisory CVEs against hosts: ``vulnerable`` | ``fixed`` | ``not-applicable`` | ``unknown``, with reasons.

A verdict depends only on what the host runs (update line and build) and on the configuration the
advisory's exposure depends on (AD join, VMs with USB controllers), so hosts are grouped by those
facts once and each (advisory CVE, group) is judged once: a fleet of thousands of hosts on a few
dozen builds costs a few dozen judgements per CVE.

Rules, for a host of line L (``8.0``) on update line V (``8.0.2``) and build B:
- the advisory has no ESXi row for L (or no ESXi row at all): not-applicable;
- no patch planned / pending for L and no build: vulnerable, nothing fixes it (the workaround is the way);
- a fixed build of V: B at or above it is fixed, below it vulnerable;
- only fixes of older update lines: the build catalog decides whether B contains them (or unknown);
- only fixes of newer update lines: vulnerable, fixed by moving to the nearest one;
- a fixed version esxbot cannot place, or a host without a build: unknown, with the reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from bot.advisories.model import (
    Advisory,
    CveMatch,
    Exposure,
    FixedVersion,
    FixState,
    KevEntry,
    Verdict,
    exposures_in,
)
from bot.builds import BuildCatalog, version_tuple
from bot.model import Host, Release

_ESXI = re.compile(r"^\s*(?:VMware\s+)?ESXi?\b", re.IGNORECASE)
HostKey = tuple[str | None, int | None, bool | None, tuple[str, ...] | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    fixed_by: str | None
    reasons: tuple[str, ...]
    exposed: bool | None = None


@dataclass(frozen=True, slots=True)
class CveVerdicts:
    """One CVE of one advisory on the fleet: each distinct outcome with the hosts that have it."""

    advisory: str
    cve: str
    exploited: bool
    groups: tuple[tuple[Outcome, tuple[str, ...]], ...]

    def hosts(self, *verdicts: Verdict) -> list[str]:
        return [h for outcome, hosts in self.groups if outcome.verdict in verdicts for h in hosts]

    def at_risk(self) -> list[str]:
        """Vulnerable hosts, less those whose configuration keeps them out of reach (``exposed`` False)."""
        return [
            h
            for outcome, hosts in self.groups
            if outcome.verdict is Verdict.VULNERABLE and outcome.exposed is not False
            for h in hosts
        ]


@dataclass(frozen=True, slots=True)
class AdvisoryMatches:
    advisory: Advisory
    cves: tuple[CveVerdicts, ...]

    @property
    def exploited(self) -> bool:
        return any(c.exploited for c in self.cves)

    def hosts(self, *verdicts: Verdict) -> list[str]:
        """Hosts with any CVE of the advisory in one of ``verdicts``, once each.

        CVEs judged by the same rows share one ``groups`` tuple: it is read once.
        """
        seen: set[int] = set()
        found: dict[str, None] = {}
        for cve in self.cves:
            if id(cve.groups) in seen:
                continue
            seen.add(id(cve.groups))
            for outcome, hosts in cve.groups:
                if outcome.verdict in verdicts:
                    found.update(dict.fromkeys(hosts))
        return list(found)

    def exposure(self) -> dict[bool | None, list[str]]:
        """Vulnerable hosts by whether their configuration exposes them (True, False, None: unknown).

        A host counts as exposed when any CVE finds it so, as not exposed only when every CVE does.
        """
        seen: dict[str, set[bool | None]] = {}
        for cve in self.cves:
            for outcome, hosts in cve.groups:
                if outcome.verdict is Verdict.VULNERABLE:
                    for host in hosts:
                        seen.setdefault(host, set()).add(outcome.exposed)
        found: dict[bool | None, list[str]] = {True: [], False: [], None: []}
        for host, values in seen.items():
            found[True if True in values else None if None in values else False].append(host)
        return found

    def matches(self) -> Iterator[CveMatch]:
        for cve in self.cves:
            for outcome, hosts in cve.groups:
                for host in hosts:
                    yield CveMatch(
                        self.advisory.id,
                        cve.cve,
                        host,
                        outcome.verdict,
                        outcome.fixed_by,
                        cve.exploited,
                        outcome.reasons,
                        outcome.exposed,
                    )


class HostGroups:
    """Hosts grouped by what verdicts depend on; build once per fleet, reuse for every advisory.

    ``builds`` maps (version, build) to the hosts under it split by exposure facts (AD join, VMs
    with a USB controller): the version verdict is judged once per build, the exposure once per split.
    """

    def __init__(self, hosts: Iterable[Host]) -> None:
        builds: dict[
            tuple[str | None, int | None], dict[tuple[bool | None, tuple[str, ...] | None], list[str]]
        ] = {}
        for host in hosts:
            split = builds.setdefault((host.version, host.build), {})
            split.setdefault((host.ad_joined, host.usb_controller_vms), []).append(host.name)
        self.builds = {
            vb: {facts: tuple(names) for facts, names in split.items()} for vb, split in builds.items()
        }

    @property
    def groups(self) -> dict[HostKey, tuple[str, ...]]:
        return {(*vb, *facts): names for vb, split in self.builds.items() for facts, names in split.items()}


@functools.lru_cache(maxsize=512)
def _line(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None


def _exposure(
    kinds: Sequence[Exposure], ad: bool | None, usb: tuple[str, ...] | None
) -> tuple[bool | None, list[str]]:
    exposed: bool | None = None
    said: list[str] = []
    for kind in kinds:
        if kind is Exposure.ACTIVE_DIRECTORY:
            if ad is None:
                said.append("exposure needs an Active Directory join; whether the host is joined is unknown")
            elif ad:
                said.append("the host is joined to Active Directory: exposed")
                exposed = True
            else:
                said.append("the host is not joined to Active Directory: not exposed while it stays so")
                exposed = False if exposed is None else exposed
        elif kind is Exposure.USB_CONTROLLER:
            if usb is None:
                said.append("exposure needs a VM with a USB controller; the host's VMs are unknown")
            elif usb:
                names = ", ".join(usb[:5]) + (f" and {len(usb) - 5} more" if len(usb) > 5 else "")
                said.append(f"VMs with a USB controller: {names}: exposed")
                exposed = True
            else:
                said.append("no VM on the host has a USB controller: not exposed while none is added")
                exposed = False if exposed is None else exposed
    return exposed, said


@dataclass(frozen=True, slots=True)
class _Placed:
    version: tuple[int, int, int]
    build: int
    fix: FixedVersion


@dataclass(frozen=True, slots=True)
class _Plan:
    """The response-matrix rows one CVE is judged by, read once: per line, the placed fixes."""

    advisory: Advisory
    cve: str
    listed: tuple[str, ...]  # lines named for the CVE, newest first
    rows: Mapping[str, tuple[FixedVersion, ...]]  # line → every fix of its rows
    placed: Mapping[str, tuple[_Placed, ...]]
    workaround: Mapping[str, str | None]


class Judge:
    """Verdicts of advisory CVEs on host groups; the build catalog's answers are cached."""

    def __init__(self, catalog: BuildCatalog) -> None:
        self._catalog = catalog
        self._names: dict[int, str] = {}
        self._tuples: dict[str, tuple[int, int, int]] = {}

    def _vt(self, version: str) -> tuple[int, int, int]:
        found = self._tuples.get(version)
        if found is None:
            found = self._tuples[version] = version_tuple(version)
        return found

    def plan(self, advisory: Advisory, cve: str) -> _Plan:
        rows: dict[str, list[FixedVersion]] = {}
        workaround: dict[str, str | None] = {}
        for lf in advisory.lines:
            if lf.cves and cve not in lf.cves:
                continue
            rows.setdefault(lf.line, []).extend(lf.fixes)
            workaround.setdefault(lf.line, lf.workaround)
        placed = {
            line: tuple(
                _Placed(self._vt(f.version), f.build, f)
                for f in fixes
                if f.state is FixState.FIXED and f.build and f.version
            )
            for line, fixes in rows.items()
        }
        listed = tuple(sorted(rows, key=self._vt, reverse=True))
        return _Plan(advisory, cve, listed, {k: tuple(v) for k, v in rows.items()}, placed, workaround)

    def kinds(self, advisory: Advisory, cve: str) -> tuple[Exposure, ...]:
        found = advisory.cve(cve)
        kinds = exposures_in(f"{found.title} {found.text}") if found and (found.title or found.text) else ()
        return kinds or advisory.exposures

    def judge(self, advisory: Advisory, cve: str, key: HostKey) -> Outcome:
        """One (CVE, host) verdict from scratch (the per-pair way; ``match_advisory`` groups instead)."""
        version, build, ad, usb = key
        return self.expose(
            self.versions(self.plan(advisory, cve), version, build), self.kinds(advisory, cve), ad, usb
        )

    @staticmethod
    def expose(
        outcome: Outcome, kinds: Sequence[Exposure], ad: bool | None, usb: tuple[str, ...] | None
    ) -> Outcome:
        if not kinds or outcome.verdict not in (Verdict.VULNERABLE, Verdict.UNKNOWN):
            return outcome
        exposed, said = _exposure(kinds, ad, usb)
        return Outcome(outcome.verdict, outcome.fixed_by, (*outcome.reasons, *said), exposed)

    def versions(self, plan: _Plan, version: str | None, build: int | None) -> Outcome:
        advisory = plan.advisory
        if not advisory.lines:
            if advisory.products:
                return Outcome(Verdict.NOT_APPLICABLE, None, ("the advisory lists no ESXi product",))
            return Outcome(Verdict.UNKNOWN, None, ("the advisory's fixed versions are not known yet",))
        if not plan.rows:  # rows for the advisory's other CVEs only
            if any(not _ESXI.match(p) for p in advisory.products):
                return Outcome(
                    Verdict.NOT_APPLICABLE, None, ("the response matrix lists this CVE for other products",)
                )
            return Outcome(Verdict.UNKNOWN, None, ("no ESXi fixed version is known for this CVE yet",))
        line = _line(version)
        if line is None:
            return Outcome(Verdict.UNKNOWN, None, ("the host's version is unknown",))
        fixes = plan.rows.get(line)
        if fixes is None:
            where = f"ESXi {', '.join(plan.listed)}"
            return Outcome(
                Verdict.NOT_APPLICABLE, None, (f"the advisory's fixes cover {where}; the host runs {line}",)
            )
        placed = plan.placed[line]
        if not placed:
            return self._unplaced(line, fixes, plan.workaround.get(line))
        if build is None:
            return Outcome(Verdict.UNKNOWN, None, ("the host's build is unknown",))
        host_v = self._vt(version or line)
        same = [p for p in placed if p.version == host_v]
        name = self._name(build)
        if same:
            fix = min(same, key=lambda p: p.build).fix
            if build >= (fix.build or 0):
                return Outcome(Verdict.FIXED, fix.label(), (f"host build {build}{name} ≥ {fix.label()}",))
            return Outcome(
                Verdict.VULNERABLE,
                fix.label(),
                (f"host build {build}{name} is older than {fix.label()}, the fix for its update line",),
            )
        older = [p for p in placed if p.version < host_v]
        if older:
            return self._contains(build, max(older, key=lambda p: (p.version, p.build)).fix, line)
        fix = min(placed, key=lambda p: (p.version, p.build)).fix
        return Outcome(
            Verdict.VULNERABLE,
            fix.label(),
            (f"host build {build}{name} predates {fix.label()}, the nearest fix for ESXi {line}",),
        )

    def _unplaced(self, line: str, fixes: Sequence[FixedVersion], workaround: str | None) -> Outcome:
        states = {f.state for f in fixes}
        tail = (f"workaround: {workaround}",) if workaround else ("no workaround is published",)
        if FixState.NO_PATCH in states:
            return Outcome(Verdict.VULNERABLE, None, (f"no patch planned for ESXi {line}", *tail))
        if FixState.PENDING in states:
            return Outcome(Verdict.VULNERABLE, None, (f"the patch for ESXi {line} is pending", *tail))
        reasons = tuple(f.reason or f"cannot place {f.text!r}" for f in fixes) or (
            f"the advisory lists ESXi {line} without a fixed version",
        )
        return Outcome(Verdict.UNKNOWN, None, reasons)

    def _contains(self, build: int, fix: FixedVersion, line: str) -> Outcome:
        known = self._catalog.lookup(fix.build)
        release = Release(
            line=line,
            name=fix.name or fix.text,
            build=fix.build or 0,
            release_date=known.release_date if known else None,
            version=fix.version,
        )
        verdict = self._catalog.contains(build, release)
        if verdict.contained is True:
            return Outcome(Verdict.FIXED, fix.label(), (verdict.reason,))
        if verdict.contained is False:
            return Outcome(Verdict.VULNERABLE, fix.label(), (verdict.reason,))
        return Outcome(Verdict.UNKNOWN, fix.label(), (verdict.reason,))

    def _name(self, build: int) -> str:
        found = self._names.get(build)
        if found is None:
            known = self._catalog.lookup(build)
            found = self._names[build] = f" ({known.name})" if known else ""
        return found


Groups = tuple[tuple[Outcome, tuple[str, ...]], ...]


def _judge_fleet(judge: Judge, plan: _Plan, kinds: tuple[Exposure, ...], fleet: HostGroups) -> Groups:
    by_outcome: dict[Outcome, list[str]] = {}
    for (version, build), split in fleet.builds.items():
        base = judge.versions(plan, version, build)
        if not kinds or base.verdict not in (Verdict.VULNERABLE, Verdict.UNKNOWN):
            names = by_outcome.setdefault(base, [])
            for hosts in split.values():
                names.extend(hosts)
            continue
        for (ad, usb), hosts in split.items():
            by_outcome.setdefault(judge.expose(base, kinds, ad, usb), []).extend(hosts)
    return tuple((o, tuple(h)) for o, h in by_outcome.items())


def match_advisory(
    advisory: Advisory,
    groups: HostGroups,
    judge: Judge,
    kev: Mapping[str, KevEntry],
) -> AdvisoryMatches:
    """Every CVE of the advisory on the fleet; CVEs judged by the same rows share one result."""
    result: list[CveVerdicts] = []
    shared: dict[tuple[tuple[int, ...], tuple[Exposure, ...]], Groups] = {}
    for cve in advisory.cve_ids:
        rows = tuple(i for i, lf in enumerate(advisory.lines) if not lf.cves or cve in lf.cves)
        kinds = judge.kinds(advisory, cve)
        found = shared.get((rows, kinds))
        if found is None:
            found = shared[(rows, kinds)] = _judge_fleet(judge, judge.plan(advisory, cve), kinds, groups)
        result.append(CveVerdicts(advisory.id, cve, cve in kev, found))
    return AdvisoryMatches(advisory, tuple(result))


def match_all(
    advisories: Iterable[Advisory],
    hosts: Iterable[Host],
    catalog: BuildCatalog,
    kev: Mapping[str, KevEntry],
) -> list[AdvisoryMatches]:
    groups = HostGroups(hosts)
    judge = Judge(catalog)
    return [match_advisory(a, groups, judge, kev) for a in advisories]
