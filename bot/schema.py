"""One way to read a configuration section: a frozen dataclass is its schema, ``parse`` fills it.

A section declares its keys as dataclass fields next to the code that uses them; adding a key is one
line. Field types say what is accepted: ``str``, ``int``, ``float``, ``bool``, ``Secret``, ``Literal``
choices, ``StrEnum``s, ``Path``, ``X | None``, ``tuple[X, ...]``, ``Mapping[str, X]``, nested dataclasses, and
``Annotated`` forms for the rest: ``Seconds``/``Duration`` (``30s``, ``5m``, ``1h`` or a number of
seconds), ``Port``, ``Range(lo, hi)`` and ``Via(convert, expected)``. Unknown keys are refused with a
"did you mean"; every ``ConfigError`` names the key path and the expected form, never a secret.
``load_yaml`` reads a file with bounded size, depth and aliases and a clear error for bad bytes.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml

from bot.durations import parse_duration

T = TypeVar("T")

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256


class ConfigError(ValueError):
    """A setting is wrong; ``str()`` is ``file: key.path: problem`` and fit for a person."""

    def __init__(self, path: str, problem: str, file: str = "") -> None:
        self.path, self.problem, self.file = path, problem, file
        super().__init__(": ".join(p for p in (file, path, problem) if p))

    def in_file(self, file: str | Path) -> ConfigError:
        return self if self.file else ConfigError(self.path, self.problem, str(file))


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds for a number."""

    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class Via:
    """A converter for a type the schema does not know; ``expected`` describes the accepted form."""

    convert: Callable[[Any], Any]
    expected: str


class _DurationMark:
    pass


DURATION = _DurationMark()
MAX_DURATION = timedelta(days=3650)

Seconds = Annotated[float, DURATION]  # a duration held as seconds
Duration = Annotated[timedelta, DURATION]
Port = Annotated[int, Range(1, 65535)]
PortOrAny = Annotated[int, Range(0, 65535)]  # 0: the kernel picks one (tests)


def show(value: Any) -> str:
    """A bounded description of a value for an error message (never a whole structure)."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def refuse_unknown(data: Mapping[Any, Any], known: Iterable[str], where: str) -> None:
    names = sorted(known)
    for key in data:
        if str(key) not in names:
            hint = did_you_mean(str(key), names)
            raise ConfigError(_join(where, str(key)), f"unknown setting{hint}; known: {', '.join(names)}")


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def duration(value: Any, where: str) -> timedelta:
    """``30s``/``5m``/``1h``/``1d12h`` or a number of seconds, at most ten years."""
    expected = "a duration such as 30s, 5m or 1h (or a number of seconds)"
    if isinstance(value, bool):
        raise ConfigError(where, f"expected {expected}, got {show(value)}")
    try:
        if isinstance(value, int | float):
            result = timedelta(seconds=value)
        elif isinstance(value, str) and value.strip().isdigit():
            result = timedelta(seconds=int(value.strip()))
        elif isinstance(value, str):
            result = parse_duration(value)
        else:
            raise ConfigError(where, f"expected {expected}, got {show(value)}")
    except (ValueError, OverflowError):
        raise ConfigError(where, f"expected {expected}, got {show(value)}") from None
    if result < timedelta(0) or result > MAX_DURATION:
        raise ConfigError(where, f"expected a duration between 0s and 3650d, got {show(value)}")
    return result


def _number(value: Any, kind: type, where: str) -> Any:
    word = "a whole number" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(where, f"expected {word}, got {show(value)}")
    try:
        number = kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(where, f"expected {word}, got {show(value)}") from None
    if kind is float and number != number:  # NaN
        raise ConfigError(where, f"expected {word}, got {show(value)}")
    if kind is int and isinstance(value, float) and number != value:
        raise ConfigError(where, f"expected {word}, got {show(value)}")
    return number


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(where, f"expected true or false, got {show(value)}")


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(where, f"expected text, got {show(value)}")
    return str(value)


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the type ``hint`` describes; ``ConfigError`` at ``where`` otherwise."""
    marks: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, *rest = typing.get_args(hint)
        marks = tuple(rest)
    via = next((m for m in marks if isinstance(m, Via)), None)
    if via is not None:
        try:
            return via.convert(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(where, f"expected {via.expected}: {exc}") from None
    result: Any
    if DURATION in marks:
        span = duration(value, where)
        seconds = span.total_seconds()
        result = span if hint is timedelta else int(seconds) if hint is int else seconds
    else:
        result = _plain(value, hint, where)
    for mark in marks:
        if isinstance(mark, Range) and result is not None:
            number = result.total_seconds() if isinstance(result, timedelta) else result
            low = -float("inf") if mark.low is None else mark.low
            high = float("inf") if mark.high is None else mark.high
            if not low <= number <= high:
                bounds = f"between {_num(mark.low)} and {_num(mark.high)}"
                if mark.high is None:
                    bounds = f"at least {_num(mark.low)}"
                raise ConfigError(where, f"expected a number {bounds}, got {show(value)}")
    return result


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and x == int(x) else str(x)


def _plain(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float | None):
            raise ConfigError(where, "expected text (the secret), got a structure")
        return Secret("" if value is None else str(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto", "none")):
            return None
        return coerce(value, args[0], where)
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(where, f"expected one of {', '.join(map(str, allowed))}, got {show(value)}")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in hint)
            raise ConfigError(where, f"expected one of {choices}, got {show(value)}") from None
    if hint is bool:
        return _bool(value, where)
    if hint is int or hint is float:
        return _number(value, hint, where)
    if hint is str:
        return _text(value, where)
    if hint is Path:
        return Path(_text(value, where))
    if origin is tuple:
        item = typing.get_args(hint)[0]
        items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value
        if items is None:
            return ()
        if not isinstance(items, list | tuple):
            raise ConfigError(where, f"expected a list, got {show(items)}")
        return tuple(coerce(v, item, _join(where, i)) for i, v in enumerate(items))
    if origin is Mapping or origin is dict or hint is Mapping:
        pair = typing.get_args(hint)
        value_hint = pair[1] if pair else Any
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(where, f"expected a mapping, got {show(value)}")
        if value_hint is Any:
            return dict(value)
        return {_text(k, where): coerce(v, value_hint, _join(where, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return parse(hint, value, where)
    if hint is Any:
        return value
    raise TypeError(f"schema: {where} has a type the schema does not know: {hint!r}")


def parse(cls: type[T], raw: Any, where: str) -> T:
    """Build the dataclass ``cls`` from a mapping; unknown or missing keys and bad values are errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"expected a mapping, got {show(raw)}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"schema: {cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    refuse_unknown(raw, fields, where)
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {str(k): coerce(v, hints[str(k)], _join(where, str(k))) for k, v in raw.items()}
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(_join(where, missing[0]), "required setting is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None


def parse_list(cls: type[T], raw: Any, where: str) -> tuple[T, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ConfigError(where, f"expected a list, got {show(raw)}")
    return tuple(parse(cls, item, _join(where, i)) for i, item in enumerate(raw))


class _BoundedLoader(yaml.SafeLoader):
    """Safe YAML with a nesting depth and an alias budget (alias bombs and deep nesting fail fast)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner reads ahead through nested ``[[[[`` (quadratic in PyYAML); stop it at the limit.
        if self.flow_level >= MAX_DEPTH:
            raise ConfigError("", f"nested more than {MAX_DEPTH} levels deep")
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ConfigError("", f"more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ConfigError("", f"nested more than {MAX_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(path: str | Path) -> Any:
    """A YAML (or JSON) file's data; ``ConfigError`` naming the file for anything unreadable."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("", f"cannot read: {exc.strerror}", str(p)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError("", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"not UTF-8 text (bad byte at offset {exc.start})", str(p)) from None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters already here
    except yaml.YAMLError as exc:
        raise ConfigError("", f"not valid YAML: {_first_line(exc)}", str(p)) from None
    try:
        return loader.get_single_data()
    except ConfigError as exc:
        raise exc.in_file(p) from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"not valid YAML: {_first_line(exc)}", str(p)) from None
    except RecursionError:
        raise ConfigError("", f"nested more than {MAX_DEPTH} levels deep", str(p)) from None
    finally:
        loader.dispose()


def _first_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(problem)
