"""The alert page's "what fixes this" line: the newest known release with a boot-device fix for a host.

The alert engine asks synchronously while it writes a page, so the releases are kept in memory and
refreshed from the release service at start and after every announcement.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from bot.model import Host, Release, Verdict
from bot.releases.matching import match_release
from bot.releases.service import ReleaseService

log = logging.getLogger(__name__)

_BOOT = re.compile(
    r"\b(usb|sd card|sd-card|boot ?bank|boot device|boot media|vmkusb|satadom)\b", re.IGNORECASE
)


class BootFixHint:
    """``hint(host)`` → "PR 2777003 in ESXi 7.0 Update 2c (build 18426014): …" or None."""

    def __init__(self, service: ReleaseService) -> None:
        self._service = service
        self._releases: Sequence[Release] = ()

    async def refresh(self) -> None:
        self._releases = await self._service.releases()

    def __call__(self, host: Host) -> str | None:
        for release in self._releases:  # newest first
            if not any(_BOOT.search(f"{fix.title} {fix.text}") for fix in release.fixes):
                continue
            result = match_release(release, [host], self._service.rules, self._service.catalog)
            for fix_matches in result.fixes:
                fix = fix_matches.fix
                if not _BOOT.search(f"{fix.title} {fix.text}"):
                    continue
                if fix_matches.hosts(Verdict.AFFECTED, Verdict.POSSIBLY_AFFECTED):
                    return f"PR {fix.pr} in {release.name} (build {release.build}): {fix.title}"
        return None
