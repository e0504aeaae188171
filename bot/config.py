"""Settings from an optional YAML file, a ``.env`` file and ``ESXBOT_*`` environment variables.

Precedence: environment > ``.env`` > YAML file > defaults. Environment names are the setting path in
upper case joined by ``_``: ``ESXBOT_DATABASE_URL``, ``ESXBOT_SLACK_BOT_TOKEN``,
``ESXBOT_MATRIX_ACCESS_TOKEN``. Secrets are ``Secret`` values whose ``repr`` never shows them.
Validation errors name the file and the setting.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from bot.schema import DURATION, ConfigError, Port, PortOrAny, Range, Secret, load_yaml, parse

__all__ = ["AuthSettings", "ConfigError", "MatrixSettings", "Secret", "Settings", "SlackSettings"]
__all__ += ["VCenterSettings", "load_settings", "read_dotenv"]

Role = Literal["viewer", "operator", "admin", "none"]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives (``env:VAR`` or ``file:/abs/path``); the reference itself is not secret."""

    scheme: str
    target: str

    FORM: ClassVar[str] = "a secret reference (env:VAR_NAME or file:/absolute/path)"

    @classmethod
    def optional(cls, value: object) -> SecretRef | None:
        return None if value is None or value == "" else cls.parse(value)

    @classmethod
    def parse(cls, value: object) -> SecretRef:
        if not isinstance(value, str):
            raise ValueError("a secret reference must be text: env:VAR_NAME or file:/absolute/path")
        scheme, sep, target = value.partition(":")
        # Never echo ``value``: a password pasted where a reference belongs must not reach a log.
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


@dataclass(frozen=True, slots=True)
class AuthSettings:
    roles: Mapping[str, Role] = field(default_factory=dict)  # user id or glob → viewer|operator|admin|none
    default_role: Literal["viewer", "none"] = "viewer"  # everyone not in roles; never more than viewer
    two_person: bool = False  # confirmations must come from a second operator


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: Secret = field(default_factory=lambda: Secret(""))
    app_token: Secret = field(default_factory=lambda: Secret(""))
    signing_secret: Secret = field(default_factory=lambda: Secret(""))
    mode: Literal["socket", "http"] = "socket"
    slash_command: str = "/esx"
    http_port: PortOrAny = 3000
    base_url: str = ""  # Web API base URL override (tests point it at a local fake)
    http_host: str = "127.0.0.1"  # the HTTP mode listener's address

    def __post_init__(self) -> None:
        if self.mode == "http" and self.bot_token and not self.signing_secret:
            raise ValueError("mode http needs signing_secret (Slack signs every request with it)")

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
    port: Port = 443
    ca_file: str = ""
    thumbprint: str = ""  # SHA-256 of the server certificate, hex with or without colons
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default="var/esxbot.db", repr=False)  # may hold a password
    inventory_file: str = ""
    demo: bool | None = None  # None: demo when no chat platform and no vCenter is configured
    console_user: str = "console:admin"
    confirm_ttl: Annotated[int, DURATION, Range(10, 86400)] = 300  # seconds a confirmation stays open
    stale_command_age: Annotated[int, DURATION] = 120
    log_level: str = "INFO"
    log_json: bool = False
    web_host: str = "127.0.0.1"
    web_port: PortOrAny = 0  # /healthz, /readyz, /metrics; 0: off (the deploy files set 9090)
    web_details: bool = False  # check details (vCenter names, errors) for non-loopback clients too
    leader_name: str = "esxbot"  # instances with the same name and database elect one leader
    instance: str = ""  # this instance's name in logs and /readyz (default: host name and pid)
    auth: AuthSettings = field(default_factory=AuthSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    vcenters: tuple[VCenterSettings, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by sub-systems
    base_dir: str = "."
    config_file: str = ""  # the YAML file the settings came from, for error messages

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


_INTERNAL = ("extra", "base_dir", "config_file")  # filled by load_settings, not by the user


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    dotenv: str | Path | None = ".env",
) -> Settings:
    """Build settings; raises ``ConfigError`` naming the file (or variable) and setting that is wrong.

    Keys that are not settings of this module land in ``extra``: the runtime checks them against
    the sections it knows (``bot/runtime/sections.py``).
    """
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if config_file:
        path = Path(config_file)
        loaded = load_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("", "the top level must be a mapping of settings", str(path))
        data.update({str(k): v for k, v in loaded.items()})
        base_dir = path.resolve().parent
    merged_env: dict[str, str] = {}
    if dotenv:
        merged_env.update(read_dotenv(Path(dotenv)))
    merged_env.update(os.environ if env is None else env)
    _apply_env(data, merged_env)
    known = {f.name for f in dataclasses.fields(Settings)} - set(_INTERNAL)
    extra = {k: data.pop(k) for k in list(data) if k not in known}
    try:
        settings = parse(Settings, data, "")
    except ConfigError as exc:
        variable = "ESXBOT_" + exc.path.upper().replace(".", "_")
        source = f"environment {variable}" if variable in merged_env else str(config_file or "")
        raise exc.in_file(source or "environment (ESXBOT_* and .env)") from None
    return dataclasses.replace(
        settings, extra=extra, base_dir=str(base_dir), config_file=str(config_file or "")
    )
