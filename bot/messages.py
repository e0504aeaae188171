"""The platform-neutral chat vocabulary: who said what where (``Command``) and what we answer (``Reply``).

Handlers build replies from a handful of block types; each chat adapter renders them once (Slack Block
Kit, Matrix HTML, console text, JSON). A reply always carries a plain-text ``summary`` because mobile
notifications and screen readers only see that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """A chat user by stable platform id: ``slack:U024BE7LH``, ``matrix:@ann:example.org``, ``console:a``."""

    id: str
    display_name: str | None = None

    @property
    def platform(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def label(self) -> str:
        return self.display_name or self.id


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a message lives: platform, room/channel id, and the thread it belongs to if any."""

    platform: str  # "slack", "matrix", "console"
    room: str
    thread: str | None = None
    direct: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.room}"


@dataclass(frozen=True, slots=True)
class Command:
    """One incoming chat command, with the prefix (``!esx``, ``/esx``, mention) already removed."""

    user: User
    conversation: Conversation
    text: str
    message_id: str | None = None  # platform id of the message, for threads and reactions
    sent_at: datetime | None = None  # when the platform says it was sent (stale-command checks)
    prefix: str = ""  # what makes text a command where it was said: "!esx", "/esx", "" in DMs and console

    def form(self, text: str) -> str:
        """``text`` as a person types it here, e.g. ``!esx help`` in a Matrix room, ``help`` in a DM."""
        return f"{self.prefix} {text}" if self.prefix else text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with "…" when something was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Style(StrEnum):
    PLAIN = "plain"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    style: Style = Style.PLAIN


@dataclass(frozen=True, slots=True)
class Fields:
    """Label/value pairs, e.g. a host status card."""

    items: tuple[tuple[str, str], ...]
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class Confirm:
    """A pending confirmation: the answer is ``yes <token>`` / ``no <token>`` or a button/reaction."""

    token: str
    prompt: str
    expires_at: datetime
    danger: bool = True


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    command: str  # the chat command the button runs, e.g. "ack 12"
    danger: bool = False


@dataclass(frozen=True, slots=True)
class Actions:
    """Buttons on platforms that have them; other platforms show the commands to type."""

    buttons: tuple[Button, ...]


Block = Text | Fields | Table | Code | Confirm | Actions


def _no_data() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers. ``data`` is the machine-readable payload behind ``say --json``."""

    summary: str
    blocks: tuple[Block, ...] = ()
    ok: bool = True
    data: Mapping[str, Any] = field(default_factory=_no_data)
    in_thread: bool = False  # long-running work answers in a thread under the command
    notify: tuple[str, ...] = ()  # user ids (``matrix:@ann:example.org``) the message means to ping

    @classmethod
    def text(cls, text: str, *, style: Style = Style.PLAIN, ok: bool = True) -> Reply:
        return cls(summary=text, blocks=(Text(text, style),), ok=ok)

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls(summary=text, blocks=(Text(text, Style.ERROR),), ok=False)
