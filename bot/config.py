"""Settings from an optional YAML file, a ``.env`` file and ``ESXBOT_*`` environment variables.

Precedence: environment > ``.env`` > YAML file > defaults. Environment names are the setting path in
upper case joined by ``_``: ``ESXBOT_DATABASE_URL``, ``ESXBOT_SLACK_BOT_TOKEN``,
``ESXBOT_MATRIX_ACCESS_TOKEN``. Secrets are ``Secret`` values whose ``repr`` never shows them.
Validation errors name the file and the setting.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives (``env:VAR`` or ``file:/abs/path``); the reference itself is not secret."""

    scheme: str
    target: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        scheme, sep, target = text.partition(":")
        # Never echo ``text``: a password pasted where a reference belongs must not reach a log.
        if not sep or scheme not in ("env", "file") or not target:
            raise ValueError("a secret reference must be env:VAR_NAME or file:/absolute/path")
        if scheme == "file" and not Path(target).is_absolute():
            raise ValueError("a file: secret reference needs an absolute path")
        return cls(scheme, target)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}"

    def resolve(self) -> str:
        """The secret's value (blocking for ``file:``); LookupError names only the reference."""
        if self.scheme == "env":
            value = os.environ.get(self.target)
            if not value:
                raise LookupError(f"environment variable {self.target} is not set")
            return value
        try:
            value = Path(self.target).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise LookupError(f"cannot read {self.target}: {reason}") from None
        if not value:
            raise LookupError(f"{self.target} is empty")
        return value


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
class AuthSettings:
    roles: Mapping[str, str] = field(default_factory=dict)  # user id or glob → viewer|operator|admin
    default_role: str = "viewer"
    two_person: bool = False  # confirmations must come from a second operator


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: Secret = field(default_factory=lambda: Secret(""))
    app_token: Secret = field(default_factory=lambda: Secret(""))
    signing_secret: Secret = field(default_factory=lambda: Secret(""))
    mode: str = "socket"  # socket | http
    slash_command: str = "/esx"
    http_port: int = 3000
    base_url: str = ""  # Web API base URL override (tests point it at a local fake)

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)


@dataclass(frozen=True, slots=True)
class MatrixSettings:
    homeserver: str = ""
    user_id: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    access_token: Secret = field(default_factory=lambda: Secret(""))
    device_name: str = "esxbot"
    prefix: str = "!esx"
    allowed_rooms: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.homeserver and self.user_id and (self.password or self.access_token))


@dataclass(frozen=True, slots=True)
class VCenterSettings:
    name: str
    host: str
    user: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    port: int = 443
    ca_file: str = ""
    thumbprint: str = ""  # SHA-256 of the server certificate, hex with or without colons
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default="var/esxbot.db", repr=False)  # may hold a password
    inventory_file: str = ""
    demo: bool | None = None  # None: demo when no chat platform and no vCenter is configured
    console_user: str = "console:admin"
    confirm_ttl: int = 300
    stale_command_age: int = 120
    log_level: str = "INFO"
    log_json: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 0  # /healthz, /readyz, /metrics; 0: off (the deploy files set 9090)
    web_details: bool = False  # check details (vCenter names, errors) for non-loopback clients too
    leader_name: str = "esxbot"  # instances with the same name and database elect one leader
    instance: str = ""  # this instance's name in logs and /readyz (default: host name and pid)
    auth: AuthSettings = field(default_factory=AuthSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    vcenters: tuple[VCenterSettings, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by sub-systems
    base_dir: str = "."

    @property
    def hardware(self) -> tuple[str, ...]:
        """The settings that reach real hosts or their BMCs; any of them ends demo mode."""
        found = ["vcenters"] if self.vcenters else []
        if self.extra.get("bmcs"):
            found.append("bmcs")
        jobs = self.extra.get("jobs")
        if isinstance(jobs, Mapping):
            found += [f"jobs.{key}" for key in ("esxcli", "depot_url") if jobs.get(key)]
        return tuple(found)

    @property
    def demo_mode(self) -> bool:
        """Demo hosts and a console admin: never while anything can touch real hardware."""
        if self.hardware:
            return False
        if self.demo is not None:
            return self.demo
        return not (self.slack.enabled or self.matrix.enabled or self.inventory_file)

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Secret:
        return value if isinstance(value, Secret) else Secret("" if value is None else str(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto", "none")):
            return None
        return _coerce(value, args[0], where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if hint is str:
        return "" if value is None else str(value)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(items))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(hint, value, where)
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {str(data)[:80]!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or 'settings'}: {exc}") from None


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


_SECTIONS = ("auth", "slack", "matrix")


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    top = {f.name for f in dataclasses.fields(Settings)}
    for key, value in env.items():
        if not key.startswith("ESXBOT_"):
            continue
        path = key.removeprefix("ESXBOT_").lower()
        for section in _SECTIONS:
            if path.startswith(section + "_"):
                data.setdefault(section, {})
                data[section] = {**data[section], path.removeprefix(section + "_"): value}
                break
        else:
            if path in top and path not in ("vcenters", "extra", "base_dir"):
                data[path] = value


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    dotenv: str | Path | None = ".env",
) -> Settings:
    """Build settings; raises ``ConfigError`` naming the file and setting that is wrong."""
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if config_file:
        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data.update(loaded)
        base_dir = path.resolve().parent
    merged_env: dict[str, str] = {}
    if dotenv:
        merged_env.update(read_dotenv(Path(dotenv)))
    merged_env.update(os.environ if env is None else env)
    _apply_env(data, merged_env)
    known = {f.name for f in dataclasses.fields(Settings)}
    extra = {k: data.pop(k) for k in list(data) if k not in known}
    data["extra"] = {**data.get("extra", {}), **extra}
    data["base_dir"] = str(base_dir)
    vcenters = data.pop("vcenters", None) or []
    settings: Settings = _build(Settings, data, f"{config_file}" if config_file else "")
    if not isinstance(vcenters, list):
        raise ConfigError(f"{config_file}: vcenters must be a list")
    built = tuple(_build(VCenterSettings, v, f"{config_file}: vcenters[{i}]") for i, v in enumerate(vcenters))
    return dataclasses.replace(settings, vcenters=built)
