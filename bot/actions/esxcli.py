"""Install an image profile with ``esxcli software profile update`` over SSH (asyncssh).

For hosts managed neither by vLCM images nor by the patch manager. The host key is always verified
against the configured known_hosts file (never ``known_hosts=None``); a mismatch refuses before any
credential or command is sent. Nothing typed in chat reaches the command: the depot comes from
configuration, the profile from the release catalog, and both must match strict patterns before the
argv is joined with ``shlex.quote``. The host name comes from the inventory and is checked too.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncssh

from bot.config import SecretRef
from bot.schema import Port, Seconds, Via, parse

log = logging.getLogger(__name__)

PROFILE_RE = re.compile(r"^ESXi-\d+\.\d+[0-9A-Za-z.]*(?:-[0-9A-Za-z.]+){1,4}$")
DEPOT_RE = re.compile(
    r"^(?:https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~%+=-]+)+|/vmfs/volumes/[A-Za-z0-9._/-]+)$"
)
HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")


class EsxcliError(Exception):
    """The install over SSH could not run or esxcli failed; ``str()`` is fit for chat."""


@dataclass(frozen=True, slots=True)
class EsxcliSettings:
    """``jobs.esxcli``: how to reach hosts over SSH; the password is a secret reference."""

    known_hosts: str
    username: str = "root"
    password: Annotated[SecretRef | None, Via(SecretRef.optional, SecretRef.FORM)] = None
    client_keys: tuple[str, ...] = ()
    port: Port = 22
    timeout: Seconds = 1800.0
    addresses: Mapping[str, str] = field(default_factory=dict)  # host name → address to dial

    def __post_init__(self) -> None:
        if not Path(self.known_hosts).is_absolute():
            raise ValueError("known_hosts must be an absolute path to a known_hosts file")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EsxcliSettings:
        return parse(cls, data, "jobs.esxcli")


@dataclass(frozen=True, slots=True)
class EsxcliResult:
    command: str
    reboot_required: bool
    message: str


def pick_profile(profiles: tuple[str, ...], build: int) -> str | None:
    """The release's standard image profile (with VMware Tools), if a valid one is listed."""
    valid = [p for p in profiles if PROFILE_RE.fullmatch(p)]
    ranked = sorted(valid, key=lambda p: (not p.endswith("-standard"), str(build) not in p, "s-" in p))
    return ranked[0] if ranked else None


def update_command(depot: str, profile: str) -> str:
    """``esxcli software profile update -d <depot> -p <profile>``, validated and quoted."""
    if not DEPOT_RE.fullmatch(depot):
        raise EsxcliError("the depot URL is not a plain http(s) URL or /vmfs/volumes path")
    if not PROFILE_RE.fullmatch(profile):
        raise EsxcliError("the image profile name is not a valid ESXi profile name")
    argv = ["esxcli", "software", "profile", "update", "-d", depot, "-p", profile]
    return shlex.join(argv)


def _parse(output: str) -> tuple[bool, str]:
    reboot = re.search(r"Reboot Required:\s*(true|false)", output, re.IGNORECASE)
    message = re.search(r"Message:\s*(.+)", output)
    return (
        bool(reboot and reboot.group(1).lower() == "true"),
        (message.group(1).strip() if message else output.strip())[:300],
    )


class EsxcliInstaller:
    """Runs the profile update on one host at a time; raises ``EsxcliError``."""

    def __init__(self, settings: EsxcliSettings) -> None:
        self.settings = settings

    async def profile_update(self, host: str, *, depot: str, profile: str) -> EsxcliResult:
        command = update_command(depot, profile)
        if not HOST_RE.fullmatch(host):
            raise EsxcliError("the host name is not a valid DNS name")
        s = self.settings
        address = s.addresses.get(host, host)
        options: dict[str, Any] = {
            "port": s.port,
            "username": s.username,
            "known_hosts": s.known_hosts,
            "client_keys": list(s.client_keys) or None,
            "connect_timeout": min(s.timeout, 60.0),
        }
        if s.password is not None:
            try:
                options["password"] = s.password.resolve()
            except LookupError as exc:
                raise EsxcliError(f"SSH password for esxcli: {exc}") from None
        try:
            async with asyncssh.connect(address, **options) as conn:
                done = await conn.run(command, check=False, timeout=s.timeout)
        except asyncssh.HostKeyNotVerifiable:
            raise EsxcliError(f"SSH host key of {host} does not match known_hosts: refused") from None
        except asyncssh.PermissionDenied:
            raise EsxcliError(f"SSH login to {host} refused") from None
        except asyncssh.TimeoutError:
            raise EsxcliError(f"esxcli on {host} did not finish within {s.timeout:g} s") from None
        except (OSError, asyncssh.Error) as exc:
            raise EsxcliError(f"SSH to {host} failed: {type(exc).__name__}") from None
        out = str(done.stdout or "") + str(done.stderr or "")
        reboot, message = _parse(out)
        if done.exit_status != 0:
            raise EsxcliError(f"esxcli on {host} exited {done.exit_status}: {message}")
        log.info("esxcli profile update on %s: %s", host, message)
        return EsxcliResult(command=command, reboot_required=reboot, message=message)
