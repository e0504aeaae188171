"""Alert labels and label matchers: what grouping, silences and inhibition rules look at.

Every alert carries the labels of its host when it opened: ``host``, ``cluster``, ``vcenter``,
``kind``, ``boot`` (the boot device kind) and ``build``. A label the inventory does not know is absent,
never empty. A matcher is a label and one or more shell globs (``esx0*``, ``prod-?``); it matches when
the label is present and one glob fits it, compared without case (host names are DNS names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from bot.model import BootKind, Host

LABELS = ("host", "cluster", "vcenter", "kind", "boot", "build")
DEFAULT_GROUP_BY = ("kind", "cluster")
MAX_GLOB = 200

Labels = Mapping[str, str]


class MatcherError(ValueError):
    """A matcher names an unknown label or has no value; the message says which."""


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    globs: tuple[str, ...]

    def matches(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        if not value:
            return False
        value = value.lower()
        return any(fnmatchcase(value, glob.lower()) for glob in self.globs)

    def text(self) -> str:
        return f"{self.label}={'|'.join(self.globs)}"


def alert_labels(
    host_name: str, kind: str, host: Host | None, extra: Iterable[tuple[str, str]] = ()
) -> dict[str, str]:
    """The labels of a new alert: the signal's host and kind, the inventory's facts, the signal's own."""
    labels = {"host": host_name, "kind": kind}
    if host is not None:
        if host.cluster:
            labels["cluster"] = host.cluster
        if host.vcenter:
            labels["vcenter"] = host.vcenter
        if host.boot_device.kind is not BootKind.UNKNOWN:
            labels["boot"] = host.boot_device.kind.value
        if host.build:
            labels["build"] = str(host.build)
    for name, value in extra:
        if name in LABELS and value:
            labels[name] = value
    return labels


def group_key(labels: Labels, group_by: Sequence[str]) -> str:
    """``kind=bootbank-loss,cluster=prod-a``; an absent label groups as ``-``."""
    return ",".join(f"{name}={labels.get(name) or '-'}" for name in group_by)


def check_label(name: str, where: str) -> str:
    if name not in LABELS:
        raise MatcherError(f"{where}: unknown label {name!r}; labels are {', '.join(LABELS)}")
    return name


def matcher(label: str, value: Any, where: str) -> Matcher:
    """One matcher from a label and a glob or a list of globs."""
    check_label(label, where)
    raw = value if isinstance(value, list | tuple) else [value]
    globs = tuple(str(v).strip() for v in raw if v is not None and str(v).strip())
    if not globs:
        raise MatcherError(f"{where}: {label} needs a value")
    if any(len(g) > MAX_GLOB for g in globs):
        raise MatcherError(f"{where}: {label} value longer than {MAX_GLOB} characters")
    return Matcher(label, globs)


def matchers_from_mapping(raw: Any, where: str) -> tuple[Matcher, ...]:
    """``{kind: bootbank-loss, host: [esx0*, esx1*]}`` → matchers; None or ``{}`` matches everything."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise MatcherError(f"{where}: expected a mapping of label → glob")
    return tuple(matcher(str(k), v, f"{where}.{k}") for k, v in raw.items())


def matches_all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)
