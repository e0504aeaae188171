"""ESXi log rules as data: load them from YAML, compile them once, match log messages fast.

A rule says which messages are a boot-device signal (precursor, loss, recovery, corruption), which
regex group names the device, and whether the device must be the host's boot device. The built-in
rules live in ``bot/data/log_patterns.yaml``; users add files of the same shape, and a user rule with
a built-in rule's id replaces it. Matching first checks cheap substrings ("needles") so the regexes
only run on the few messages that can match: syslog ingest must keep up with a busy fleet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from bot.model import BootKind, Host, Severity
from bot.rulefile import rule_entries, user_rules


class SignalKind(StrEnum):
    PRECURSOR = "precursor"
    LOSS = "loss"
    RECOVERY = "recovery"
    CORRUPTION = "corruption"


class Scope(StrEnum):
    BOOT = "boot"  # only when the device named by the line is the host's boot device
    ANY = "any"  # the text is about the boot filesystem by itself


class LogRuleError(ValueError):
    """A rule file is unreadable or a rule in it is malformed; the message names file and rule."""


@dataclass(frozen=True, slots=True)
class LogRule:
    id: str
    kind: SignalKind
    severity: Severity
    scope: Scope
    regex: re.Pattern[str]
    needles: tuple[str, ...]
    device_group: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule matching one message, before the boot-device decision."""

    rule: LogRule
    device: str | None


_BUILTIN = "log_patterns.yaml"
_FIELDS = frozenset({"id", "kind", "severity", "scope", "regex", "needles", "device_group", "description"})
# vmkusb numbers its adapters from vmhba32 up; USB sticks and SD cards (behind a USB bridge) live there.
_LOCAL_FLASH = re.compile(r"^(?:mpx\.)?vmhba(?:3[2-9]|[4-9]\d|\d{3,}):C\d+:T\d+:L\d+(?::\d+)?$")
_PATH = re.compile(r"^(vmhba\d+):C\d+:T\d+:L\d+$")
_SYSTEM_VOLUME = ("LOCKER-", "OSDATA-")


def _rule_from_mapping(raw: Any, where: str) -> LogRule:
    if not isinstance(raw, Mapping):
        raise LogRuleError(f"{where}: a rule must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise LogRuleError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    try:
        rule_id = str(raw["id"])
        kind = SignalKind(raw["kind"])
        severity = Severity(raw.get("severity", "warning"))
        scope = Scope(raw.get("scope", "boot"))
        regex = re.compile(str(raw["regex"]))
    except KeyError as exc:
        raise LogRuleError(f"{where}: missing field {exc.args[0]!r}") from None
    except (ValueError, re.error) as exc:
        raise LogRuleError(f"{where}: {exc}") from None
    needles_raw = raw.get("needles", ())
    if isinstance(needles_raw, str) or not isinstance(needles_raw, Sequence):
        raise LogRuleError(f"{where} ({rule_id}): needles must be a list of strings")
    needles = tuple(str(n) for n in needles_raw if str(n))
    group = raw.get("device_group")
    if group is not None and str(group) not in regex.groupindex:
        raise LogRuleError(f"{where} ({rule_id}): regex has no group named {group!r}")
    if scope is Scope.BOOT and group is None:
        raise LogRuleError(f"{where} ({rule_id}): scope 'boot' needs a device_group")
    return LogRule(
        id=rule_id,
        kind=kind,
        severity=severity,
        scope=scope,
        regex=regex,
        needles=needles,
        device_group=None if group is None else str(group),
        description=str(raw.get("description", "")),
    )


def parse_rules(text: str, source: str) -> list[LogRule]:
    """Rules of one YAML document (``{"rules": [...]}`` or a bare list)."""
    items = rule_entries(text, source, LogRuleError)
    return [_rule_from_mapping(item, f"{source} rule #{i + 1}") for i, item in enumerate(items)]


def builtin_rules() -> list[LogRule]:
    text = resources.files("bot").joinpath("data", _BUILTIN).read_text(encoding="utf-8")
    return parse_rules(text, _BUILTIN)


def load_rules(extra_files: Iterable[Path] = ()) -> LogRuleSet:
    """The built-in rules plus the users' files; a later rule with an existing id replaces it."""
    by_id: dict[str, LogRule] = {r.id: r for r in builtin_rules()}
    for rule in user_rules(extra_files, parse_rules, LogRuleError):
        by_id.pop(rule.id, None)
        by_id[rule.id] = rule
    return LogRuleSet(tuple(by_id.values()))


class LogRuleSet:
    """Compiled rules with a substring prefilter; ``match`` is the hot path of syslog ingest."""

    __slots__ = ("_always", "_by_needle", "rules")

    def __init__(self, rules: Sequence[LogRule]) -> None:
        self.rules: tuple[LogRule, ...] = tuple(rules)
        by_needle: dict[str, list[LogRule]] = {}
        for rule in self.rules:
            for needle in rule.needles:
                by_needle.setdefault(needle, []).append(rule)
        self._by_needle: tuple[tuple[str, tuple[LogRule, ...]], ...] = tuple(
            (n, tuple(rs)) for n, rs in by_needle.items()
        )
        # a rule without needles cannot be prefiltered: it runs on every message
        self._always: tuple[LogRule, ...] = tuple(r for r in self.rules if not r.needles)

    def match(self, message: str) -> list[RuleHit]:
        """Every rule whose regex finds the message, in rule order, each at most once."""
        candidates: list[LogRule] | None = None
        for needle, rules in self._by_needle:
            if needle in message:
                if candidates is None:
                    candidates = []
                candidates.extend(rules)
        if candidates is None and not self._always:
            return []
        hits: list[RuleHit] = []
        seen: set[str] = set()
        for rule in (*(candidates or ()), *self._always):
            if rule.id in seen:
                continue
            seen.add(rule.id)
            found = rule.regex.search(message)
            if found is None:
                continue
            device = found.group(rule.device_group) if rule.device_group else None
            hits.append(RuleHit(rule, device.strip() if device else None))
        return hits

    def match_naive(self, message: str) -> list[RuleHit]:
        """Every regex on every message, no prefilter: the baseline the benchmark compares with."""
        hits: list[RuleHit] = []
        for rule in self.rules:
            found = rule.regex.search(message)
            if found is not None:
                device = found.group(rule.device_group) if rule.device_group else None
                hits.append(RuleHit(rule, device.strip() if device else None))
        return hits


def _canonical(device: str) -> str:
    """``mpx.vmhba32:C0:T0:L0:7`` (a partition) → ``mpx.vmhba32:C0:T0:L0``; strips quotes."""
    device = device.strip().strip("\"'[]")
    parts = device.split(":")
    if len(parts) == 5 and parts[3].startswith("L") and parts[4].isdigit():
        return ":".join(parts[:4])
    if device.startswith(("naa.", "t10.", "eui.", "vml.")) and len(parts) == 2 and parts[1].isdigit():
        return parts[0]
    return device


def is_local_flash(device: str) -> bool:
    """True for a USB/SD device or path such as ``mpx.vmhba32:C0:T0:L0`` or ``vmhba32:C0:T0:L0``."""
    return _LOCAL_FLASH.match(_canonical(device)) is not None


def is_boot_device(device: str | None, host: Host | None) -> bool:
    """Does this device (or path, or system volume) belong to the host's boot device?

    With a host whose boot device (or its adapter) is known, that decides: the same device, a
    partition of it, its runtime path, or, for USB/SD boot media whose adapter holds nothing else,
    any path on that adapter. When only the kind is known, a disk/SAN/PXE-booted host has no USB/SD
    boot device; otherwise local USB/SD devices count. ESXi's own LOCKER/OSDATA system volumes count
    as boot media.
    """
    if not device:
        return False
    dev = _canonical(device)
    if dev.startswith(_SYSTEM_VOLUME):
        return True
    boot = host.boot_device if host is not None else None
    if boot is None or (boot.device is None and boot.adapter is None):
        # only the kind may be known: a host booting from disk, SAN or PXE has no USB/SD boot device
        known_other = boot is not None and boot.kind not in (BootKind.USB, BootKind.SD, BootKind.UNKNOWN)
        return not known_other and is_local_flash(dev)
    boot_dev = _canonical(boot.device) if boot.device else None
    if boot_dev is not None and dev.lower() == boot_dev.lower():
        return True
    path = _PATH.match(dev)
    if path is None:
        return False
    if boot_dev is not None and boot_dev.lower() == f"mpx.{dev}".lower():
        return True
    adapter = boot.adapter or (_adapter_of(boot_dev) if boot_dev else None)
    return boot.kind in (BootKind.USB, BootKind.SD) and adapter is not None and path.group(1) == adapter


def _adapter_of(device: str) -> str | None:
    found = _PATH.match(device.removeprefix("mpx."))
    return found.group(1) if found else None
