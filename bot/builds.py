"""The ESXi build catalog: build → version, release name and date; ordering; "does this build contain it".

A bundled table (``bot/data/esxi_builds.csv``) lists the known 6.7/7.0/8.0/9.0 builds, each row naming
where its facts come from, and the releases VMware withdrew (with the reason and the replacement);
releases found by the feed sources extend it at run time with ``add``, withdrawals with ``withdraw``.

ESX 9 (VCF 9) uses the unified version scheme: ``major.minor.maintenance.EEHH`` with EE the express
patch and HH the hot patch (``9.0.1.0101``), no "Update" names and no "i" (``ESX 9.0.1.0``). Its
update line is ``9.0.1`` and its product line ``9.0``, so the rules below hold unchanged.

Build numbers are NOT a global order. They only rise with time inside one update line (one
``major.minor.update`` version such as ``7.0.2``): VMware cuts patches for older update lines after
newer ones, so 7.0 Update 1e (19324898, 2022-02-15) has a higher number than 7.0 Update 3c (19193900,
2022-01-27) and 7.0 Update 2e (19290878) is higher than 7.0 Update 3c too. Security-only builds of a
patch carry a slightly lower number than the full build of the same patch (18295176 vs 18426014) and
contain only its security fixes. So ``contains`` compares numbers within an update line only and uses
the update-line order plus release dates across lines; where neither settles it, it says "unknown".
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources

from bot.model import Release

_UPDATE_RE = re.compile(r"\b(?:update|u)\s*0?(\d)", re.IGNORECASE)
_LINE_RE = re.compile(r"\b(\d)\.(\d)(?:\.(\d))?")


@dataclass(frozen=True, slots=True)
class KnownBuild:
    """One row of the catalog."""

    build: int
    version: str  # "7.0.2": major.minor.update, the update line ("9.0.1" for ESX 9.0.1.x)
    name: str  # "ESXi 7.0 Update 2a", "ESX 9.0.1.0"
    release_date: date | None = None
    withdrawn: str | None = None  # why VMware pulled it ("KB 335041: …"); None: not withdrawn
    replaced_by: int | None = None  # the build VMware advised instead
    source: str = ""  # where the row's facts come from

    @property
    def line(self) -> str:
        """Product line, ``7.0``."""
        return ".".join(self.version.split(".")[:2])

    @property
    def security_only(self) -> bool:
        return "security only" in self.name.lower()

    def sort_key(self) -> tuple[int, ...]:
        return (*version_tuple(self.version), self.build)


@dataclass(frozen=True, slots=True)
class Containment:
    """Whether a host build already contains a release's fixes: True, False or None (unknown), and why."""

    contained: bool | None
    reason: str


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def version_from_name(name: str) -> str | None:
    """``ESXi 7.0 Update 2c`` → ``7.0.2``; ``ESXi 7.0b``/``ESXi 8.0 GA`` → ``x.0.0``; unknown → None."""
    line = _LINE_RE.search(name)
    if line is None:
        return None
    if line.group(3) is not None:
        return f"{line.group(1)}.{line.group(2)}.{line.group(3)}"
    update = _UPDATE_RE.search(name[line.end() :])
    return f"{line.group(1)}.{line.group(2)}.{update.group(1) if update else 0}"


_UNIFIED_RE = re.compile(r"^(\d{1,2})\.(\d)(?:\.(\d))?(?:\.(\d{1,4}))?\b")


def _canonical_name(name: str) -> str:
    """Loose key for names: ``ESXi 7.0 U2c`` and ``esxi 7.0 update 2c`` are the same release;
    ``ESX 9.0.1.0``, ``ESXi 9.0.1`` and ``9.0.1`` too (and ``9.0`` is ``9.0.0.0``)."""
    text = re.sub(r"\s+", " ", name.strip().lower())
    text = re.sub(r"^(vmware )?esxi? ", "", text)
    text = re.sub(r"^(\d\.\d)(?=u(?:pdate)?\s*\d)", r"\1 ", text)  # "7.0u3b" is "7.0 u3b"
    unified = _UNIFIED_RE.match(text)
    if unified and int(unified.group(1)) >= 9:
        major, minor, maint, patch = unified.groups()
        tail = text[unified.end() :]
        patch_id = "" if patch is None or int(patch) == 0 else f".{int(patch):04d}"
        return f"{major}.{minor}.{maint or 0}{patch_id}{tail}"
    text = _UPDATE_RE.sub(lambda m: f"update {m.group(1)}", text)
    return text.replace("(security-only)", "(security only)")


class BuildCatalog:
    """Known builds by number and by name; mutable only through ``add`` (run-time releases)."""

    def __init__(self, builds: Iterable[KnownBuild] = ()) -> None:
        self._by_build: dict[int, KnownBuild] = {}
        self._by_name: dict[str, KnownBuild] = {}
        for known in builds:
            self._put(known)

    @classmethod
    def bundled(cls) -> BuildCatalog:
        text = resources.files("bot").joinpath("data/esxi_builds.csv").read_text(encoding="utf-8")
        return cls(parse_csv(text))

    def _put(self, known: KnownBuild) -> None:
        self._by_build[known.build] = known
        self._by_name.setdefault(_canonical_name(known.name), known)

    def __len__(self) -> int:
        return len(self._by_build)

    def __iter__(self) -> Iterator[KnownBuild]:
        return iter(sorted(self._by_build.values(), key=KnownBuild.sort_key))

    def add(self, release: Release) -> KnownBuild | None:
        """Teach the catalog a release from a source; returns the row, None if its version is unknowable."""
        version = release.version or version_from_name(release.name)
        if version is None:
            return None
        current = self._by_build.get(release.build)
        known = KnownBuild(
            release.build,
            version,
            current.name if current else release.name,
            release.release_date or (current.release_date if current else None),
            current.withdrawn if current else None,
            current.replaced_by if current else None,
            current.source if current else "",
        )
        self._put(known)
        return known

    def withdraw(self, build: int, reason: str, replaced_by: int | None = None) -> KnownBuild | None:
        """Mark a known build as withdrawn by VMware (an admin's word or a source's); None if unknown."""
        current = self._by_build.get(build)
        if current is None:
            return None
        known = replace(current, withdrawn=reason, replaced_by=replaced_by or current.replaced_by)
        self._by_build[build] = known
        self._by_name = {k: (known if v.build == build else v) for k, v in self._by_name.items()}
        return known

    def replacement(self, known: KnownBuild) -> KnownBuild | None:
        """What to run instead of a withdrawn build: the named replacement, else the newest good one."""
        if known.withdrawn is None:
            return None
        if known.replaced_by is not None:
            named = self.lookup(known.replaced_by)
            if named is not None and named.withdrawn is None:
                return named
        return self.latest(known.line)

    def lookup(self, build: int | str | None) -> KnownBuild | None:
        if build is None:
            return None
        try:
            return self._by_build.get(int(str(build).strip()))
        except ValueError:
            return None

    def find(self, name: str) -> KnownBuild | None:
        """A release by build number or name (``7.0 U2c``, ``ESXi 7.0 Update 2c``)."""
        if name.strip().isdigit():
            return self.lookup(name)
        key = _canonical_name(name)
        return self._by_name.get(key) or self._by_name.get(_canonical_name(f"ESXi {name}"))

    def update_line(self, version: str) -> list[KnownBuild]:
        """All builds of one update line (``7.0.2``), oldest first."""
        return sorted((k for k in self._by_build.values() if k.version == version), key=lambda k: k.build)

    def product_line(self, line: str) -> list[KnownBuild]:
        """All builds of one product line (``7.0``), by update line then build."""
        return sorted((k for k in self._by_build.values() if k.line == line), key=KnownBuild.sort_key)

    def latest(self, line: str | None = None, *, include_security_only: bool = False) -> KnownBuild | None:
        """Newest release by date (then build), optionally within a product line; never a withdrawn one."""
        rows = [
            k
            for k in self._by_build.values()
            if (line is None or k.line == line or k.version == line)
            and (include_security_only or not k.security_only)
            and k.withdrawn is None
        ]
        return max(rows, key=lambda k: (k.release_date or date.min, k.build), default=None)

    def contains(self, host_build: int, release: Release, *, host_version: str | None = None) -> Containment:
        """Does a host running ``host_build`` already contain the fixes of ``release``?

        Same update line: build numbers decide. A newer update (or product) line contains an older
        line's release when it came out no earlier (rollups carry earlier fixes); a newer line released
        BEFORE the release (7.0 U3c vs 7.0 U1e), or a build without a date, is not decidable from the
        facts we have: unknown. An older line never contains a newer line's release.
        """
        if host_build == release.build:
            return Containment(True, f"host runs build {host_build}, the build of {release.name}")
        host = self.lookup(host_build)
        h_version = host.version if host else host_version
        r_version = release.version or version_from_name(release.name)
        if h_version is None or r_version is None:
            return Containment(None, f"update line of build {host_build} is unknown")
        h_tuple, r_tuple = version_tuple(h_version), version_tuple(r_version)
        if h_tuple == r_tuple:
            if host_build > release.build:
                return Containment(True, f"host build {host_build} is newer than {release.build}")
            return Containment(False, f"host build {host_build} is older than {release.build}")
        if h_tuple < r_tuple:
            return Containment(
                False, f"host runs {h_version} (build {host_build}), an older update line than {r_version}"
            )
        h_date = host.release_date if host else None
        if h_date and release.release_date:
            if h_date >= release.release_date:
                return Containment(
                    True,
                    f"host runs {h_version} (build {host_build}, {h_date}), a newer line released "
                    f"after {release.name}",
                )
            return Containment(
                None,
                f"host build {host_build} ({h_version}, {h_date}) is a newer line but older than "
                f"{release.name} ({release.release_date}); build numbers do not compare across lines",
            )
        return Containment(
            None, f"host runs {h_version}; whether it carries {release.name}'s fixes is unknown"
        )


def parse_csv(text: str) -> list[KnownBuild]:
    """Rows ``build,version,release_name,release_date[,withdrawn,replaced_by,source]``; empty cells are
    unknown (a date is never guessed)."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        day = (row.get("release_date") or "").strip()
        replaced = (row.get("replaced_by") or "").strip()
        rows.append(
            KnownBuild(
                build=int(row["build"]),
                version=row["version"].strip(),
                name=row["release_name"].strip(),
                release_date=date.fromisoformat(day) if day else None,
                withdrawn=(row.get("withdrawn") or "").strip() or None,
                replaced_by=int(replaced) if replaced else None,
                source=(row.get("source") or "").strip(),
            )
        )
    return rows
