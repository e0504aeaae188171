"""Logging setup: plain or JSON lines, a correlation id per command and per job, secrets redacted.

``configure`` installs one stderr handler on the root logger with two filters that see every
record: ``CorrelationFilter`` stamps the current correlation id (set with ``Correlation.scope``
around a command or a job step), ``Redactor`` rewrites the message and any traceback so that chat
tokens (``xoxb-``, ``xapp-``, ``syt_``), ``Bearer`` values, ``password=…`` pairs, passwords in URLs
and every registered secret value never reach the output.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from bot.config import Secret

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bsyt_[A-Za-z0-9_=-]+"), MASK),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]+@"), rf"\1{MASK}@"),
    (
        re.compile(
            r"""(?ix)
            (["']?(?:password|passwd|pwd|secret|signing_secret|token|access_token|app_token|bot_token)
              ["']?\s*[:=]\s*)
            (?:"[^"]*"|'[^']*'|[^\s,;&}]+)
            """
        ),
        rf"\1{MASK}",
    ),
)


class Redactor(logging.Filter):
    """Masks known token shapes and every registered secret value in each record it sees."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        super().__init__()
        self._values: set[str] = set()
        for value in values:
            self.register(value)

    def register(self, value: Secret | str) -> None:
        text = value.reveal() if isinstance(value, Secret) else value
        if len(text) >= 4:  # shorter values would mask ordinary words
            self._values.add(text)

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secret_values(settings: Any) -> list[str]:
    """Every ``Secret`` value found in a settings tree (dataclasses, mappings, sequences)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Secret):
            if node:
                found.append(node.reveal())
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                walk(getattr(node, f.name))
        elif isinstance(node, Mapping):
            for item in node.values():
                walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(settings)
    return found


class Correlation:
    """The id that ties a command's (or a job's) log lines together, carried by contextvars."""

    def __init__(self) -> None:
        self._current: ContextVar[str | None] = ContextVar(f"esxbot_correlation_{id(self)}", default=None)

    def current(self) -> str | None:
        return self._current.get()

    @contextmanager
    def scope(self, prefix: str = "cmd", ident: str | None = None) -> Iterator[str]:
        """``with correlation.scope("job", job.id):`` — every line logged inside carries the id."""
        value = f"{prefix}-{ident or secrets.token_hex(4)}"
        token = self._current.set(value)
        try:
            yield value
        finally:
            self._current.reset(token)


class CorrelationFilter(logging.Filter):
    def __init__(self, correlation: Correlation) -> None:
        super().__init__()
        self._correlation = correlation

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = self._correlation.current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation = getattr(record, "correlation_id", "-")
        if correlation != "-":
            entry["correlation_id"] = correlation
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s]: %(message)s"


def configure(
    *,
    level: str = "INFO",
    json_lines: bool = False,
    redactor: Redactor | None = None,
    correlation: Correlation | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Replace the root logger's handlers with one that redacts and stamps every record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(CorrelationFilter(correlation or Correlation()))
    handler.addFilter(redactor or Redactor())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler
