"""``@command`` turns a typed async function into a frozen ``CommandSpec``; the signature is the grammar.

    @command("check", help="Status card of a host, cluster or all", role=Role.VIEWER)
    async def check(ctx: Context, target: Annotated[str, HostTarget()]) -> Reply: ...

Parameters after ``ctx``: positional words in order, ``*rest`` for the remaining words, keyword-only
parameters as ``--name value`` / ``name value`` / ``--flag``. Annotations choose the converter: ``str``,
``int``, ``float``, ``bool`` (flags only), ``Literal[...]``, ``timedelta`` or ``Annotated[T, converter]``.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.grammar import BadArgument, Choice, Converter, DurationArg, Plain, closest
from bot.messages import Reply


class CommandError(Exception):
    """A handler's way to say "cannot do that" in a sentence for the user (not a crash)."""


Handler = Callable[..., Awaitable[Reply]]


class ParamKind:
    POSITIONAL = "positional"
    REST = "rest"
    KEYWORD = "keyword"
    FLAG = "flag"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str
    converter: Converter | None  # None for flags
    required: bool
    default: Any = None

    async def convert(self, ctx: Context, raw: str) -> Any:
        if self.converter is None:
            raise BadArgument("takes no value.", param=self.name)
        return await self.converter.convert(ctx, raw, self.name)

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def usage(self) -> str:
        meta = self.converter.metavar if self.converter else ""
        if isinstance(self.converter, Choice) and self.kind in (ParamKind.POSITIONAL, ParamKind.REST):
            return f"<{meta}>" if self.required else f"[<{meta}>]"
        if self.kind == ParamKind.FLAG:
            return f"[{self.option}]"
        if self.kind == ParamKind.KEYWORD:
            return f"{self.option} <{meta}>" if self.required else f"[{self.option} <{meta}>]"
        if self.kind == ParamKind.REST:
            return f"[<{self.name}>...]" if not self.required else f"<{self.name}>..."
        return f"<{self.name}>" if self.required else f"[<{self.name}>]"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    help: str
    role: Role
    handler: Handler
    params: tuple[Param, ...]
    confirm: bool = False
    preview: Handler | None = None
    aliases: tuple[str, ...] = ()
    mutating: bool = field(default=False)  # changes hosts: stale copies are not executed

    def usage(self) -> str:
        return " ".join([self.name, *(p.usage() for p in self.params)])

    def brief(self) -> str:
        """Usage without options, for the ``help`` list: ``patch <target> [<release>...] [options]``."""
        words = [p.usage() for p in self.params if p.kind in (ParamKind.POSITIONAL, ParamKind.REST)]
        if any(p.kind in (ParamKind.KEYWORD, ParamKind.FLAG) for p in self.params):
            words.append("[options]")
        return " ".join([self.name, *words])


def _converter_for(hint: Any, name: str) -> Converter | None:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        for extra in hint.__metadata__:
            if hasattr(extra, "convert"):
                return typing.cast(Converter, extra)
        return _converter_for(typing.get_args(hint)[0], name)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1:
            return _converter_for(inner[0], name)
    if origin is Literal:
        return Choice(tuple(str(v) for v in typing.get_args(hint)))
    if hint is timedelta:
        return DurationArg()
    if hint in (str, int, float):
        return Plain(hint, name if hint is str else hint.__name__)
    raise TypeError(f"parameter {name}: unsupported annotation {hint!r}")


def _params(fn: Handler) -> tuple[Param, ...]:
    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    out: list[Param] = []
    for i, (pname, p) in enumerate(sig.parameters.items()):
        if i == 0:
            continue  # ctx
        hint = hints.get(pname, str)
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            out.append(Param(pname, ParamKind.REST, _converter_for(hint, pname), False, ()))
        elif p.kind is inspect.Parameter.KEYWORD_ONLY and hint is bool:
            out.append(Param(pname, ParamKind.FLAG, None, False, bool(default)))
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            out.append(Param(pname, ParamKind.KEYWORD, _converter_for(hint, pname), required, default))
        else:
            out.append(Param(pname, ParamKind.POSITIONAL, _converter_for(hint, pname), required, default))
    return tuple(out)


def command(
    name: str,
    *,
    help: str,
    role: Role = Role.VIEWER,
    confirm: bool = False,
    preview: Handler | None = None,
    aliases: Sequence[str] = (),
    mutating: bool | None = None,
) -> Callable[[Handler], CommandSpec]:
    """Declare a chat command. Commands that need confirmation are mutating unless said otherwise."""

    def wrap(fn: Handler) -> CommandSpec:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"command {name}: handler must be async")
        return CommandSpec(
            name=name,
            help=help,
            role=role,
            handler=fn,
            params=_params(fn),
            confirm=confirm,
            preview=preview,
            aliases=tuple(aliases),
            mutating=confirm if mutating is None else mutating,
        )

    return wrap


async def bind(spec: CommandSpec, ctx: Context, words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Match words to the spec's parameters and convert them; raises ``BadArgument``."""
    by_option = {p.option: p for p in spec.params if p.kind in (ParamKind.KEYWORD, ParamKind.FLAG)}
    bare_keywords = {p.name: p for p in spec.params if p.kind == ParamKind.KEYWORD}
    positional_words: list[str] = []
    raw_keywords: dict[str, str] = {}
    flags: dict[str, bool] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            option, _, inline = word.partition("=")
            param = by_option.get(option.lower())
            if param is None:
                known = list(by_option)
                raise BadArgument(
                    f"unknown option `{option}`.", suggestion=closest(option, known) if known else None
                )
            if param.kind == ParamKind.FLAG:
                if inline:
                    raise BadArgument(f"`{option}` takes no value.", param=param.name)
                flags[param.name] = True
            else:
                if not inline:
                    i += 1
                    if i >= len(words):
                        raise BadArgument("needs a value.", param=param.name)
                    inline = words[i]
                raw_keywords[param.name] = inline
        elif word.lower() in bare_keywords and i + 1 < len(words) and word.lower() not in raw_keywords:
            raw_keywords[word.lower()] = words[i + 1]
            i += 1
        else:
            positional_words.append(word)
        i += 1

    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    queue = list(positional_words)
    for param in spec.params:
        if param.kind == ParamKind.POSITIONAL:
            if queue:
                args.append(await param.convert(ctx, queue.pop(0)))
            elif param.required:
                raise BadArgument("missing.", param=param.name)
            else:
                args.append(param.default)
        elif param.kind == ParamKind.REST:
            args.extend([await param.convert(ctx, w) for w in queue])
            queue = []
        elif param.kind == ParamKind.FLAG:
            kwargs[param.name] = flags.get(param.name, bool(param.default))
        elif param.name in raw_keywords:
            kwargs[param.name] = await param.convert(ctx, raw_keywords[param.name])
        elif param.required:
            raise BadArgument("missing.", param=param.name)
        else:
            kwargs[param.name] = param.default
    if queue:
        raise BadArgument(f"unexpected words: {' '.join(queue)}.")
    return args, kwargs


def registry(specs: Sequence[CommandSpec]) -> Mapping[str, CommandSpec]:
    """Name and alias → spec; refuses duplicates so two modules cannot claim one word."""
    table: dict[str, CommandSpec] = {}
    for spec in specs:
        for word in (spec.name, *spec.aliases):
            if word in table:
                raise ValueError(f"command word {word!r} registered twice")
            table[word] = spec
    return table
