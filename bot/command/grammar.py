"""Chat argument grammar: a tolerant tokenizer and typed binding of words to a handler's signature.

Grammar: positional words, quoted strings ("…" or '…', also the curly quotes phones type),
``--flag`` booleans, ``--name value`` / ``--name=value`` / ``name value`` keywords for keyword-only
parameters. Every failure is one ``BadArgument`` that names the parameter and, where it can, the
closest valid value ("did you mean esx01?").
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.durations import parse_duration

if TYPE_CHECKING:
    from bot.command.context import Context

MAX_TEXT = 2000
MAX_TOKENS = 64

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
# Bidirectional overrides can make a command read differently from what runs: refuse them.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class BadArgument(Exception):
    """A command's words do not fit its signature; ``str()`` is a sentence for the user."""

    def __init__(self, message: str, *, param: str | None = None, suggestion: str | None = None) -> None:
        self.message = message
        self.param = param
        self.suggestion = suggestion
        text = f"{param}: {message}" if param else message
        if suggestion:
            text += f" Did you mean `{suggestion}`?"
        super().__init__(text)


def closest(word: str, choices: Sequence[str], cutoff: float = 0.6) -> str | None:
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


def clean_text(text: str) -> str:
    """Reject what no person types on purpose; fold newlines/tabs into spaces."""
    if len(text) > MAX_TEXT:
        raise BadArgument(f"the command is {len(text)} characters long; the limit is {MAX_TEXT}.")
    text = text.translate(_QUOTES)
    for ch in text:
        if ch in "\t\r\n":
            continue
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            raise BadArgument(f"the command contains a control character (U+{ord(ch):04X}).")
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Split on spaces, honouring quotes; a backslash escapes the next character inside double quotes."""
    text = clean_text(text)
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        buf: list[str] = []
        while i < n and text[i] != " ":
            ch = text[i]
            if ch in "\"'":
                end = i + 1
                while end < n and text[end] != ch:
                    if ch == '"' and text[end] == "\\" and end + 1 < n:
                        end += 1
                    end += 1
                if end >= n:
                    raise BadArgument(f"unbalanced {ch} quote at position {i + 1}.")
                chunk = text[i + 1 : end]
                buf.append(re.sub(r"\\(.)", r"\1", chunk) if ch == '"' else chunk)
                i = end + 1
            else:
                buf.append(ch)
                i += 1
        tokens.append("".join(buf))
        if len(tokens) > MAX_TOKENS:
            raise BadArgument(f"too many words (the limit is {MAX_TOKENS}).")
    return tokens


class Converter(Protocol):
    """Turns one word into a value, looking things up through the context when it must."""

    @property
    def metavar(self) -> str: ...

    async def convert(self, ctx: Context, raw: str, param: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Choice:
    """A ``Literal[...]`` parameter: the word must be one of these."""

    values: tuple[str, ...]

    @property
    def metavar(self) -> str:
        return "|".join(self.values)

    async def convert(self, ctx: Context, raw: str, param: str) -> Any:
        for value in self.values:
            if raw.lower() == value.lower():
                return value
        raise BadArgument(
            f"`{raw}` is not one of {', '.join(self.values)}.",
            param=param,
            suggestion=closest(raw, self.values),
        )


@dataclass(frozen=True, slots=True)
class Plain:
    """str / int / float words."""

    kind: type
    metavar: str

    async def convert(self, ctx: Context, raw: str, param: str) -> Any:
        if self.kind is str:
            return raw
        try:
            return self.kind(raw)
        except ValueError:
            raise BadArgument(f"`{raw}` is not a valid {self.kind.__name__}.", param=param) from None


@dataclass(frozen=True, slots=True)
class DurationArg:
    metavar: str = "duration"

    async def convert(self, ctx: Context, raw: str, param: str) -> Any:
        try:
            return parse_duration(raw)
        except ValueError:
            raise BadArgument(f"`{raw}` is not a duration (examples: 30m, 2h, 1d).", param=param) from None
