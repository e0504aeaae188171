"""Every configuration section the bot reads, parsed once at start by the schema next to its code.

``read_sections`` refuses a top-level key that is neither a setting nor a section here (with a "did you
mean"), parses each section with its own schema and names the file in every error. Adding a section is
one field in ``Sections`` and one line in ``PARSERS``. ``effective_settings`` is what
``esxbot config check`` prints: every value in force, secrets as ``***``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml

from bot.actions.bmc import BmcDirectory
from bot.actions.job_settings import JobSettings
from bot.alerts.intake import EngineConfig
from bot.alerts.oncall import OnCallPolicy, parse_oncall
from bot.alerts.pager import PagerSettings
from bot.alerts.syslog import SyslogConfig
from bot.config import Settings
from bot.demo.world import DemoSettings
from bot.releases.service import ReleaseSettings
from bot.releases.sources.poller import SourceConfig, parse_sources
from bot.schema import ConfigError, Secret, did_you_mean, parse, show

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sections:
    sources: tuple[SourceConfig, ...] = ()
    match_rules: tuple[str, ...] = ()  # rule files, relative to the config file
    alerts: EngineConfig = dataclasses.field(default_factory=EngineConfig)
    oncall: OnCallPolicy = dataclasses.field(default_factory=lambda: parse_oncall(None))
    pager: PagerSettings = dataclasses.field(default_factory=PagerSettings)
    syslog: SyslogConfig | None = None  # None: no syslog receiver
    bmcs: BmcDirectory = dataclasses.field(default_factory=lambda: BmcDirectory(()))
    jobs: JobSettings = dataclasses.field(default_factory=JobSettings)
    releases: ReleaseSettings = dataclasses.field(default_factory=ReleaseSettings)
    demo_fleet: DemoSettings = dataclasses.field(default_factory=DemoSettings)


def _paths(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ConfigError("match_rules", f"expected a list of rule files, got {show(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"match_rules[{i}]", f"expected a file path, got {show(item)}")
    return tuple(raw)


def _syslog(raw: Any) -> SyslogConfig | None:
    if raw is None or raw == {}:
        return None
    config = parse(SyslogConfig, raw, "syslog")
    return config if config.enabled else None


def _bmcs(raw: Any) -> BmcDirectory:
    if raw is None:
        return BmcDirectory(())
    if not isinstance(raw, list | tuple):
        raise ConfigError("bmcs", f"expected a list, got {show(raw)}")
    return BmcDirectory.from_mappings(raw)


PARSERS: dict[str, Callable[[Any], Any]] = {
    "sources": lambda raw: tuple(parse_sources(raw)),
    "match_rules": _paths,
    "alerts": EngineConfig.from_extra,
    "oncall": parse_oncall,
    "pager": lambda raw: parse(PagerSettings, raw, "pager"),
    "syslog": _syslog,
    "bmcs": _bmcs,
    "jobs": lambda raw: parse(JobSettings, raw, "jobs"),
    "releases": lambda raw: parse(ReleaseSettings, raw, "releases"),
    "demo_fleet": DemoSettings.from_mapping,
}


def read_sections(settings: Settings) -> Sections:
    """The typed sections of ``settings.extra``; ``ConfigError`` naming file and key otherwise."""
    file = settings.config_file or "settings"
    own = {f.name for f in dataclasses.fields(Settings)} - {"extra", "base_dir", "config_file"}
    for key in settings.extra:
        if key not in PARSERS:
            hint = did_you_mean(str(key), [*PARSERS, *own])
            raise ConfigError(str(key), f"unknown setting{hint}", file)
    values: dict[str, Any] = {}
    for name, parser in PARSERS.items():
        raw = settings.extra.get(name)
        try:
            values[name] = parser(raw)
        except ConfigError as exc:
            raise exc.in_file(file) from None
        except ValueError as exc:  # section parsers with their own error types name the key path
            raise ConfigError("", str(exc), file) from None
    return Sections(**values)


def _plain(node: Any) -> Any:
    if isinstance(node, Secret):
        return "***" if node else ""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return {f.name: _plain(getattr(node, f.name)) for f in dataclasses.fields(node)}
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple | frozenset):
        return [_plain(v) for v in node]
    if isinstance(node, enum.Enum):
        return node.value
    if isinstance(node, timedelta):
        return f"{int(node.total_seconds())}s"
    if node is None or isinstance(node, bool | int | float | str):
        return node
    return str(node)


def _database(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def effective_settings(settings: Settings, sections: Sections) -> str:
    """The settings in force as YAML, secrets redacted (``esxbot config check``)."""
    top = _plain(settings)
    top.pop("extra")
    top["database_url"] = _database(settings.database_url)
    top["demo_mode"] = settings.demo_mode
    top.update(_plain(sections))
    top["bmcs"] = top["bmcs"]["bmcs"]
    source = settings.config_file or "no file; defaults and environment"
    return f"# esxbot configuration: OK ({source})\n" + yaml.safe_dump(top, sort_keys=False)
