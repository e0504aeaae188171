"""Fleet facts as bitsets over host positions, and match rules decided for a whole fleet at once.

Bit ``i`` of every bitset stands for ``hosts[i]``. One pass over the hosts files each host under its
facts (boot kind, flash boot driver, tags, drivers, vendor, model, build); a rule's true and false
host sets then come from a few unions and differences of those bitsets (Python ints), so matching a
release against a fleet costs a handful of integer operations per fix instead of work per pair.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from bot.model import BootKind, Host
from bot.releases.match_rules import MatchRule


class FactIndex:
    """The fleet's facts as bitsets over host positions (bit i stands for ``hosts[i]``).

    Built in one pass over the hosts; a rule's true/false host sets then come from a few unions and
    differences of these bitsets, so no rule is evaluated host by host.
    """

    def __init__(self, hosts: Sequence[Host]) -> None:
        self.size = len(hosts)
        self.all = (1 << self.size) - 1
        self._positions: defaultdict[tuple[object, ...], list[int]] = defaultdict(list)
        self._bits: dict[tuple[object, ...], int] = {}
        for i, host in enumerate(hosts):
            boot = host.boot_device
            boot_driver = (boot.driver or "").lower()
            keys: list[tuple[object, ...]] = [
                ("kind", boot.kind.value),
                ("vendor", (host.vendor or "").lower()),
                ("model", (host.model or "").lower()),
                ("build", host.build, host.version, host.release_name),
            ]
            if boot.kind.is_flash_media:
                keys.append(("flash-driver", boot_driver))
            if host.vendor is None and host.model is None:
                keys.append(("no-make",))
            if host.drivers:
                keys.append(("has-drivers",))
            keys += [("tag", t.lower()) for t in host.tags]
            keys += [("feature", name, fact.present) for name, fact in host.features.items()]
            keys += [("driver", d.lower()) for d in host.drivers]
            if boot.driver:
                keys.append(("driver", boot_driver))
            for key in keys:
                self._positions[key].append(i)

    def bits(self, *key: object) -> int:
        found = self._bits.get(key)
        if found is None:
            flags = bytearray(b"0") * self.size
            for i in self._positions.get(key, ()):
                flags[i] = 0x31  # "1"
            found = self._bits[key] = int(flags[::-1], 2) if self.size else 0
        return found

    def any(self, kind: str, values: Iterable[str]) -> int:
        result = 0
        for value in values:
            result |= self.bits(kind, value)
        return result

    def values(self, kind: str) -> list[Any]:
        return [key[1] for key in self._positions if key[0] == kind]

    def substring(self, kind: str, needles: Sequence[str]) -> int:
        """Hosts whose lower-cased vendor/model contains any of ``needles``."""
        if not needles:
            return 0
        return self.any(kind, [v for v in self.values(kind) if any(n in v for n in needles)])

    def builds(self) -> list[tuple[Any, ...]]:
        return [key[1:] for key in self._positions if key[0] == "build"]


def rule_bits(rule: MatchRule, facts: FactIndex) -> tuple[int, int]:
    """(hosts where ``rule`` is true, hosts where it is false); every other host is unknown.

    This is ``matching.evaluate`` as set arithmetic, in the same order of precedence: ``not_tags``
    make it false; tags make it true; a known ``feature`` decides; boot kind, drivers, vendor or model
    make it true; then ``absent`` decides.
    A change to one must be made to the other (tests compare both on every pair of a random fleet).
    """
    false = facts.any("tag", rule.not_tags)
    left = facts.all & ~false
    true = left & facts.any("tag", rule.tags)
    left &= ~true
    if rule.feature:
        present, absent = (
            facts.bits("feature", rule.feature, True),
            facts.bits("feature", rule.feature, False),
        )
        true |= left & present
        false |= left & absent
        left &= ~(present | absent)
    found = left & (
        facts.any("kind", rule.boot)
        | facts.any("driver", rule.drivers)
        | facts.substring("vendor", rule.vendors)
        | facts.substring("model", rule.models)
    )
    true |= found
    left &= ~found
    if_known = rule.absent == "false-if-known"
    if rule.absent == "false":
        return true, false | left
    if rule.boot:
        left &= ~(
            facts.bits("kind", BootKind.UNKNOWN.value) | facts.any("flash-driver", rule.boot_maybe_drivers)
        )
        if if_known:
            return true, false | left
    if rule.vendors or rule.models:
        left &= ~facts.bits("no-make")
        if if_known:
            return true, false | left
    if rule.drivers and if_known:
        false |= left & facts.bits("has-drivers")
    return true, false
