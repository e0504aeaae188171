"""Who may do what: roles viewer < operator < admin per chat user id, from config.

Entries are exact ids (``slack:U024BE7LH``, ``matrix:@ann:example.org``, ``console:ann``) or globs
(``matrix:@*:example.org``); the most specific match wins (exact before glob, longer glob first).
Anyone unmatched gets ``default_role`` (viewer unless configured): read-only commands only, so a
missing policy fails closed for everything that changes a host.
"""

from __future__ import annotations

import fnmatch
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


@dataclass(frozen=True, slots=True)
class Policy:
    exact: Mapping[str, Role]
    globs: tuple[tuple[str, Role], ...]
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
        return cls(exact=exact, globs=tuple(globs), default=parse_role(default_role))

    def role_of(self, user_id: str) -> Role:
        if user_id in self.exact:
            return self.exact[user_id]
        for pattern, role in self.globs:
            if fnmatch.fnmatchcase(user_id, pattern):
                return role
        return self.default
