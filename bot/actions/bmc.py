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
from typing import Annotated, Any
from urllib.parse import urlsplit

from bot.config import SecretRef
from bot.schema import ConfigError, Seconds, Via, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BmcConfig:
    """One BMC: where it is, how to log in, and which host it belongs to (by name or serial)."""

    name: str
    url: str
    username: str
    password: Annotated[SecretRef, Via(SecretRef.parse, SecretRef.FORM)]
    verify_tls: bool = True
    ca_file: str | None = None
    host: str | None = None
    serial: str | None = None  # serial number / service tag / SKU / SMBIOS UUID of the system
    timeout: Seconds = 10.0  # for each request

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
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "bmcs[]") -> BmcConfig:
        """Build from a settings entry; ``ConfigError`` says which key is wrong, never a secret."""
        return parse(cls, data, where)


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
        """The ``bmcs`` section; a bad or duplicate entry is a ``ConfigError``, never skipped."""
        found: dict[str, BmcConfig] = {}
        for index, entry in enumerate(entries):
            bmc = BmcConfig.from_mapping(entry, f"bmcs[{index}]")
            if bmc.name in found:
                raise ConfigError(f"bmcs[{index}].name", f"duplicate BMC name {bmc.name!r}")
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
