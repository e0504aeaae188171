"""``esxbot inventory dump [--json]``: one retrieval from every configured vCenter, printed.

``dump_inventory`` returns (exit code, text): 0 when every vCenter answered, 1 when one failed
(its error goes to the text, the others are still printed), 2 when none is configured. JSON is
``{"hosts": [Host fields…], "errors": {"vc": "…"}}`` with enums as their values, datetimes ISO.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from bot.builds import BuildCatalog
from bot.model import BootDevice, FeatureFact, Host
from bot.vsphere.client import OUTAGE_ERRORS, VSphere
from bot.vsphere.host_retrieval import release_lookup

if TYPE_CHECKING:
    from bot.config import VCenterSettings


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BootDevice | FeatureFact):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, frozenset | tuple | list):
        return (
            sorted(_plain(v) for v in value) if isinstance(value, frozenset) else [_plain(v) for v in value]
        )
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def host_record(host: Host) -> dict[str, Any]:
    return {f.name: _plain(getattr(host, f.name)) for f in fields(host)}


def _line(h: Host) -> str:
    bootbank = {True: "mounted", False: "NOT MOUNTED", None: "?"}[h.bootbank_mounted]
    place = "/".join(p for p in (h.vcenter, h.datacenter, h.cluster) if p)
    state = f"{h.connection_state.value}/{h.power_state.value}{' MM' if h.in_maintenance else ''}"
    return (
        f"{h.name:<28} {place:<24} {h.release_name or h.version or '?':<22} {h.build or '?':<9} "
        f"{h.boot_device.describe():<40} bootbank {bootbank:<11} {state} {h.overall_status or ''}"
    )


async def dump_inventory(
    vcenters: Sequence[VCenterSettings], *, as_json: bool, catalog: BuildCatalog | None = None
) -> tuple[int, str]:
    if not vcenters:
        return 2, "no vCenter configured (add `vcenters:` to the config file)"
    lookup = release_lookup(catalog or BuildCatalog.bundled())
    hosts: list[Host] = []
    errors: dict[str, str] = {}
    for settings in vcenters:
        vc = VSphere.from_settings(settings, release=lookup)
        try:
            hosts.extend(await vc.refresh())
        except OUTAGE_ERRORS as exc:
            errors[settings.name] = f"{type(exc).__name__}: {exc}"
        finally:
            await vc.close()
    code = 1 if errors else 0
    if as_json:
        return code, json.dumps({"hosts": [host_record(h) for h in hosts], "errors": errors}, indent=2)
    lines = [_line(h) for h in hosts]
    lines += [f"vCenter {name}: {error}" for name, error in errors.items()]
    lines.append(f"{len(hosts)} hosts from {len(vcenters) - len(errors)}/{len(vcenters)} vCenters")
    return code, "\n".join(lines)
