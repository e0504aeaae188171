"""Which BMC belongs to which host, and how to log in to it: BMC settings and secret references.

A `BmcConfig` names one Redfish BMC (URL, user, a `SecretRef` to the password, TLS settings) and the
host it serves (host name and/or serial number, service tag, SKU or SMBIOS UUID). `BmcDirectory`
finds the BMC for a host. The password itself is only read by `SecretRef.resolve`, when a client
opens; nothing here ever holds or prints it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.config import SecretRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BmcConfig:
    """One BMC: where it is, how to log in, and which host it belongs to (by name or serial)."""

    name: str
    url: str
    username: str
    password: SecretRef
    verify_tls: bool = True
    ca_file: str | None = None
    host: str | None = None
    serial: str | None = None  # serial number / service tag / SKU / SMBIOS UUID of the system
    timeout: float = 10.0  # seconds, for each request

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"BMC {self.name}: url must be http(s)://host[:port]")
        if parts.username or parts.password or parts.query:
            raise ValueError(f"BMC {self.name}: put credentials in username/password, not the url")
        if not self.name or not self.username:
            raise ValueError("a BMC needs a name and a username")
        if not self.timeout > 0:
            raise ValueError(f"BMC {self.name}: timeout must be positive")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BmcConfig:
        """Build from a settings entry; ValueError says which field is wrong, never its value."""
        try:
            return cls(
                name=str(data["name"]),
                url=str(data["url"]).rstrip("/"),
                username=str(data["username"]),
                password=SecretRef.parse(str(data["password"])),
                verify_tls=bool(data.get("verify_tls", True)),
                ca_file=_opt_str(data.get("ca_file")),
                host=_opt_str(data.get("host")),
                serial=_opt_str(data.get("serial")),
                timeout=float(data.get("timeout", 10.0)),
            )
        except KeyError as exc:
            raise ValueError(f"BMC entry lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"BMC entry {data.get('name', '?')}: {exc}") from None


def _opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _same_host(configured: str, asked: str) -> bool:
    a, b = configured.casefold().rstrip("."), asked.casefold().rstrip(".")
    if a == b:
        return True
    # "esx-01" matches "esx-01.lab.local" when one side is unqualified.
    return ("." not in a or "." not in b) and a.split(".")[0] == b.split(".")[0]


@dataclass(frozen=True, slots=True)
class BmcDirectory:
    """The configured BMCs; finds the one for a host by serial (preferred) or by host name."""

    bmcs: tuple[BmcConfig, ...]

    def __post_init__(self) -> None:
        names = [b.name for b in self.bmcs]
        if len(set(names)) != len(names):
            raise ValueError("BMC names must be unique")

    @classmethod
    def from_mappings(cls, entries: Iterable[Mapping[str, Any]]) -> BmcDirectory:
        found: dict[str, BmcConfig] = {}
        for index, entry in enumerate(entries):
            try:
                bmc = BmcConfig.from_mapping(entry)
            except ValueError as exc:
                log.warning("skipping BMC entry #%d: %s", index, exc)
                continue
            if bmc.name in found:
                log.warning("skipping BMC entry #%d: duplicate name %s", index, bmc.name)
                continue
            found[bmc.name] = bmc
        return cls(tuple(found.values()))

    def find(self, *, host_name: str | None = None, serial: str | None = None) -> BmcConfig | None:
        if serial:
            for bmc in self.bmcs:
                if bmc.serial and bmc.serial.casefold() == serial.strip().casefold():
                    return bmc
        if host_name:
            for bmc in self.bmcs:
                if bmc.host and _same_host(bmc.host, host_name.strip()):
                    return bmc
        return None
