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


@dataclass(frozen=True, slots=True)
class AdvisoryMatches:
    advisory: Advisory
    cves: tuple[CveVerdicts, ...]

    @property
    def exploited(self) -> bool:
        return any(c.exploited for c in self.cves)

    def hosts(self, *verdicts: Verdict) -> list[str]:
        """Hosts with any CVE of the advisory in one of ``verdicts``, in fleet order, once each."""
        return list(dict.fromkeys(h for c in self.cves for h in c.hosts(*verdicts)))

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
    """Hosts grouped by what verdicts depend on; build once per fleet, reuse for every advisory."""

    def __init__(self, hosts: Iterable[Host]) -> None:
        groups: dict[HostKey, list[str]] = {}
        for host in hosts:
            key = (host.version, host.build, host.ad_joined, host.usb_controller_vms)
            groups.setdefault(key, []).append(host.name)
        self.groups: dict[HostKey, tuple[str, ...]] = {k: tuple(v) for k, v in groups.items()}


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


class Judge:
    """Verdicts of one advisory CVE per host group, memoised by (cve rows, host key)."""

    def __init__(self, catalog: BuildCatalog) -> None:
        self._catalog = catalog

    def judge(self, advisory: Advisory, cve: str, key: HostKey) -> Outcome:
        version, build, ad, usb = key
        outcome = self._versions(advisory, cve, version, build)
        if outcome.verdict not in (Verdict.VULNERABLE, Verdict.UNKNOWN):
            return outcome
        found = advisory.cve(cve)
        kinds = exposures_in(f"{found.title} {found.text}") if found and (found.title or found.text) else ()
        kinds = kinds or advisory.exposures
        if not kinds:
            return outcome
        exposed, said = _exposure(kinds, ad, usb)
        return Outcome(outcome.verdict, outcome.fixed_by, (*outcome.reasons, *said), exposed)

    def _versions(self, advisory: Advisory, cve: str, version: str | None, build: int | None) -> Outcome:
        if not advisory.lines:
            if advisory.products:
                return Outcome(Verdict.NOT_APPLICABLE, None, ("the advisory lists no ESXi product",))
            return Outcome(Verdict.UNKNOWN, None, ("the advisory's fixed versions are not known yet",))
        rows = [lf for lf in advisory.lines if not lf.cves or cve in lf.cves]
        line = _line(version)
        if line is None:
            return Outcome(Verdict.UNKNOWN, None, ("the host's version is unknown",))
        listed = sorted({lf.line for lf in rows}, reverse=True)
        mine = [lf for lf in rows if lf.line == line]
        if not mine:
            where = f"ESXi {', '.join(listed)}" if listed else "no ESXi line"
            return Outcome(Verdict.NOT_APPLICABLE, None, (f"{cve} concerns {where}; the host runs {line}",))
        fixes = [f for lf in mine for f in lf.fixes]
        placed = [f for f in fixes if f.state is FixState.FIXED and f.build and f.version]
        if not placed:
            return self._unplaced(line, fixes, mine[0].workaround or advisory.workaround)
        if build is None:
            return Outcome(Verdict.UNKNOWN, None, ("the host's build is unknown",))
        host_v = version_tuple(version or line)
        same = [f for f in placed if version_tuple(f.version or "") == host_v]
        name = self._name(build)
        if same:
            fix = min(same, key=lambda f: f.build or 0)
            if build >= (fix.build or 0):
                return Outcome(Verdict.FIXED, fix.label(), (f"host build {build}{name} ≥ {fix.label()}",))
            return Outcome(
                Verdict.VULNERABLE,
                fix.label(),
                (f"host build {build}{name} is older than {fix.label()}, the fix for its update line",),
            )
        older = [f for f in placed if version_tuple(f.version or "") < host_v]
        if older:
            fix = max(older, key=lambda f: (version_tuple(f.version or ""), f.build or 0))
            return self._contains(build, name, fix, line)
        fix = min(placed, key=lambda f: (version_tuple(f.version or ""), f.build or 0))
        return Outcome(
            Verdict.VULNERABLE,
            fix.label(),
            (f"host build {build}{name} predates {fix.label()}, the nearest fix for ESXi {line}",),
        )

    def _unplaced(self, line: str, fixes: list[FixedVersion], workaround: str | None) -> Outcome:
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

    def _contains(self, build: int, name: str, fix: FixedVersion, line: str) -> Outcome:
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
        known = self._catalog.lookup(build)
        return f" ({known.name})" if known else ""


def match_advisory(
    advisory: Advisory,
    groups: HostGroups,
    judge: Judge,
    kev: Mapping[str, KevEntry],
) -> AdvisoryMatches:
    result: list[CveVerdicts] = []
    for cve in advisory.cve_ids:
        by_outcome: dict[Outcome, list[str]] = {}
        for key, hosts in groups.groups.items():
            by_outcome.setdefault(judge.judge(advisory, cve, key), []).extend(hosts)
        result.append(
            CveVerdicts(advisory.id, cve, cve in kev, tuple((o, tuple(h)) for o, h in by_outcome.items()))
        )
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
