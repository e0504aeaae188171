"""Who may do what: roles viewer < operator < admin per chat user id, from config.

Entries are exact ids (``slack:U024BE7LH``, ``matrix:@ann:example.org``, ``console:ann``) or globs
(``matrix:@*:example.org``); the most specific match wins (exact before glob, longer glob first).
In a glob ``*`` and ``?`` never match ``:``, so ``*`` cannot run from a Matrix user's local part into
its server name (``matrix:@*:*`` is everyone on Matrix). An id that is not well-formed for its platform
gets no role at all, before any entry is looked at. Anyone else unmatched gets ``default_role`` (viewer
unless configured): read-only commands only, so a missing policy fails closed for everything that
changes a host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    NOBODY = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class PolicyError(ValueError):
    pass


def parse_role(word: str) -> Role:
    try:
        return Role[word.strip().upper()] if word.strip().lower() != "none" else Role.NOBODY
    except KeyError:
        raise PolicyError(f"unknown role {word!r}: use viewer, operator, admin or none") from None


_SERVER = r"(?:[A-Za-z0-9.-]{1,255}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
_WELL_FORMED = {
    "matrix": re.compile(rf"@[!-9;-~]{{1,255}}:{_SERVER}"),  # local part: printable ASCII, no ':'
    "slack": re.compile(r"[A-Z0-9]{1,32}"),
}
_OTHER = re.compile(r"[^\s:\x00-\x1f\x7f]{1,255}")  # console and test platforms: one word, no ':'


def well_formed(user_id: str) -> bool:
    """Whether ``user_id`` is ``platform:id`` with an id of the platform's shape."""
    platform, sep, rest = user_id.partition(":")
    if not sep or not re.fullmatch(r"[a-z]{1,20}", platform):
        return False
    return bool(_WELL_FORMED.get(platform, _OTHER).fullmatch(rest))


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` is any run of characters but ``:``, ``?`` one of them, ``[…]`` a class; the rest literal."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        end = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append("[^:]*")
        elif ch == "?":
            out.append("[^:]")
        elif end > 0:
            body = pattern[i + 1 : end]
            negated = body.startswith("!")
            body = re.escape(body[1:] if negated else body).replace("\\-", "-")
            out.append(f"[^:{body}]" if negated else f"(?!:)[{body}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class Policy:
    exact: Mapping[str, Role]
    globs: tuple[tuple[re.Pattern[str], Role], ...]
    default: Role = Role.VIEWER

    @classmethod
    def from_config(cls, roles: Mapping[str, str], default_role: str = "viewer") -> Policy:
        exact: dict[str, Role] = {}
        globs: list[tuple[str, Role]] = []
        for who, role_word in roles.items():
            role = parse_role(str(role_word))
            if any(ch in who for ch in "*?["):
                globs.append((who, role))
            else:
                exact[who] = role
        globs.sort(key=lambda g: len(g[0]), reverse=True)
        compiled = tuple((_glob(who), role) for who, role in globs)
        return cls(exact=exact, globs=compiled, default=parse_role(default_role))

    def role_of(self, user_id: str) -> Role:
        if not well_formed(user_id):
            return Role.NOBODY
        if user_id in self.exact:
            return self.exact[user_id]
        for pattern, role in self.globs:
            if pattern.fullmatch(user_id):
                return role
        return self.default
