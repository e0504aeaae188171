"""Conditions about releases: the product line a fix belongs to, and releases a fix text names.

A release's fixes concern hosts of its own product line (major.minor: 6.7, 7.0, 8.0, 9.0, compared as
numbers): a host on an older line never installs a newer line's patch, so ``older_line`` says why such
a pair is not affected, and ``SiblingFixes`` names the release of the host's own line that carries the
same PR when one is known. A fix text that names releases makes them a condition (``NamedReleases``):
"hosts that run ESXi 7.0 Update 2d" or "after upgrading to ESXi 7.0 Update 3" mean that release or a
newer one; "Affected ESXi versions are 7.0 Update 3a, 7.0 Update 3 and 7.0 Update 2d" means exactly
those. Pure: the build catalog is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.builds import BuildCatalog, version_from_name, version_tuple
from bot.model import Host, Release

_RELEASE_RE = re.compile(r"\bESXi\s+(\d+\.\d)(?:\s*(?:Update|U)\s*(\d[a-z]?)\b|([a-z])\b)?", re.IGNORECASE)
# "Affected ESXi versions are 7.0 Update 3a, 7.0 Update 3, 7.0 Update 2d, and 7.0 Update 2c." names a set
_AFFECTED_SET_RE = re.compile(
    r"\baffected\s+(?:ESXi\s+)?(?:versions|releases|builds)\s+(?:are|include)\b:?(.*?)(?:\.(?:\s|$)|$)",
    re.IGNORECASE | re.DOTALL,
)
_LISTED_RE = re.compile(
    r"(?:\bESXi\s+)?\b(\d+\.\d)(?:\s*(?:Update|U)\s*(\d[a-z]?)\b|([a-z])\b)?", re.IGNORECASE
)

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"  # states of one condition on one host


@dataclass(frozen=True, slots=True)
class NamedReleases:
    """Releases a fix text names as a condition: hosts on one of them or newer (``exact=False``: "hosts
    that run ESXi 7.0 Update 2d", "after upgrading to ESXi 7.0 Update 3"), or exactly on one of them
    (``exact=True``: "Affected ESXi versions are 7.0 Update 3a, 7.0 Update 3 and 7.0 Update 2d")."""

    names: tuple[str, ...]
    exact: bool = False


def _release_name(line: str, update: str | None, letter: str | None) -> str:
    return f"ESXi {line} Update {update.lower()}" if update else f"ESXi {line}{(letter or '').lower()}"


def release_names(text: str, *, exclude: str | None = None) -> frozenset[str]:
    names = {_release_name(*m.groups()) for m in _RELEASE_RE.finditer(text)}
    names.discard(exclude or "")
    return frozenset(n for n in names if re.search(r"Update|\d[a-z]$", n))


def named_releases(text: str, *, exclude: str | None = None) -> NamedReleases | None:
    """The releases a text names as a condition; an "affected versions are …" list wins over names
    elsewhere in the text ("later than ESXi 7.0 Update 2a")."""
    listed = _AFFECTED_SET_RE.search(text)
    if listed:
        names = {_release_name(*m.groups()) for m in _LISTED_RE.finditer(listed.group(1))}
        names = {n for n in names if re.search(r"Update|\d[a-z]$", n)}
        if names:
            return NamedReleases(tuple(sorted(names)), exact=True)
    found = release_names(text, exclude=exclude)
    return NamedReleases(tuple(sorted(found))) if found else None


def _running(host: Host, catalog: BuildCatalog) -> tuple[str | None, str | None, int | None]:
    """(release name, update-line version ``7.0.2``, build) of a host, each None when unknown."""
    known = catalog.lookup(host.build)
    if known is not None:
        return known.name, known.version, known.build
    # a version without a major number ("", "?") is no version
    version = host.version if host.version and version_tuple(host.version)[0] else None
    return host.release_name, version, host.build


def host_line(host: Host, catalog: BuildCatalog) -> str | None:
    """The product line (major.minor, ``7.0``) a host runs, None when unknown."""
    _, version, _ = _running(host, catalog)
    return ".".join(version.split(".")[:2]) if version else None


def _line_tuple(line: str) -> tuple[int, int]:
    major, minor, _ = version_tuple(line)
    return major, minor


def _compare(host: Host, name: str, catalog: BuildCatalog) -> int | None:
    """-1 when the host runs an older release than ``name``, 1 when it runs ``name`` or a newer one,
    None when that cannot be told (an unknown build, or a build of the same update line without the
    named release's build number)."""
    _, version, build = _running(host, catalog)
    named = catalog.find(name)
    named_version = named.version if named else version_from_name(name)
    if version is None or named_version is None:
        return None
    mine, theirs = version_tuple(version), version_tuple(named_version)
    if mine != theirs:
        return 1 if mine > theirs else -1
    if build is None or named is None:
        return None
    return 1 if build >= named.build else -1


def _same_release(a: str, b: str, catalog: BuildCatalog) -> bool:
    known_a, known_b = catalog.find(a), catalog.find(b)
    if known_a is not None and known_b is not None:
        return known_a.build == known_b.build
    return a.lower() == b.lower()


def evaluate_releases(named: NamedReleases, host: Host, catalog: BuildCatalog) -> tuple[str, str]:
    """A named-release condition on one host (see ``NamedReleases``)."""
    running, version, build = _running(host, catalog)
    listed = ", ".join(named.names)
    what = running or (f"ESXi {version}" if version else "an unknown release")
    runs = f"host runs {what}" + (f" (build {build})" if build else "")
    if named.exact:
        head = f"fix lists the affected versions {listed}"
        if running and any(_same_release(running, n, catalog) for n in named.names):
            return TRUE, f"{head}; {runs}"
        if running or (version and all(version_from_name(n) != version for n in named.names)):
            return FALSE, f"{head}; {runs}, not one of them"
        return UNKNOWN, f"{head}; which of them the host runs is unknown ({runs})"
    head = f"fix concerns hosts on {listed} or later"
    order = [_compare(host, n, catalog) for n in named.names]
    if 1 in order:
        return TRUE, f"{head}; {runs}"
    if order and all(o == -1 for o in order):
        return FALSE, f"{head}; {runs}, an older release"
    return UNKNOWN, f"{head}; whether the host's release is as new is unknown ({runs})"


def older_line(host: Host, release: Release, catalog: BuildCatalog) -> str | None:
    """Why ``release`` cannot concern ``host``: the host runs an older product line, which never installs
    a newer line's patch. None when the lines are the same, newer or unknown."""
    line = host_line(host, catalog)
    if line is None or not release.line or _line_tuple(line) >= _line_tuple(release.line):
        return None
    return f"fix is in the {release.line} line; host runs {line} — a {line} release carries its own fixes"


class SiblingFixes:
    """Where else a PR was published, by product line: ``(pr, line)`` → release name."""

    def __init__(self, releases: Sequence[Release] = ()) -> None:
        self._by_pr: dict[tuple[str, str], str] = {}
        for release in releases:
            for fix in release.fixes:
                self._by_pr.setdefault((fix.pr, release.line), release.name)

    def line_reason(self, reason: str, pr: str, host: Host, catalog: BuildCatalog) -> str:
        line = host_line(host, catalog)
        sibling = self._by_pr.get((pr, line)) if line else None
        return f"{reason}; PR {pr} is also in {sibling}, of the host's line" if sibling else reason
