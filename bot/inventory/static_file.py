"""Static inventory files (YAML or JSON): a list of hosts, or ``{"hosts": [...]}``.

Only ``name`` and ``build`` (or ``version``) are required. Anything missing is unknown, not false. An
unknown field is an error (a typo must not silently mean "unknown"); free-form data goes under
``labels:`` (a mapping, kept in ``Host.extra``). Errors name the file, the host and the field; files
are read with the bounds of ``bot.schema.load_yaml`` (size, depth, aliases, UTF-8).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.builds import BuildCatalog
from bot.model import FEATURES, BootDevice, BootKind, ConnectionState, FeatureFact, Host, PowerState
from bot.schema import ConfigError, did_you_mean, load_yaml, show

BuildLookup = Callable[[int], tuple[str | None, str | None] | None]  # build → (version, release name)

KNOWN = {
    "name",
    "build",
    "version",
    "release_name",
    "vcenter",
    "datacenter",
    "cluster",
    "boot_device",
    "bootbank_mounted",
    "vendor",
    "model",
    "serial",
    "drivers",
    "tags",
    "connection_state",
    "power_state",
    "in_maintenance",
    "boot_time",
    "overall_status",
    "config_issues",
    "vm_count",
    "address",
    "features",
    "ad_joined",
    "usb_controller_vms",
    "labels",
}
MAX_BUILD = 999_999_999  # ESXi builds have eight digits today


class InventoryError(ValueError):
    pass


def _str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip() or None
    raise InventoryError(f"{where}: expected text, got {type(value).__name__}")


def _boot(value: Any, where: str) -> BootDevice:
    if value is None:
        return BootDevice(reason="not given in the inventory file")
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping):
        raise InventoryError(f"{where}: expected a kind (usb, sd, disk, …) or a mapping")
    _refuse_unknown(value, ("kind", "device", "adapter", "driver", "override"), where)
    kind_word = str(value.get("kind", "unknown")).strip().lower()
    try:
        kind = BootKind(kind_word)
    except ValueError:
        choices = ", ".join(k.value for k in BootKind)
        raise InventoryError(f"{where}.kind: {kind_word!r} is not one of {choices}") from None
    return BootDevice(
        kind=kind,
        device=_str(value.get("device"), f"{where}.device"),
        adapter=_str(value.get("adapter"), f"{where}.adapter"),
        driver=_str(value.get("driver"), f"{where}.driver"),
        reason="from the inventory file",
    )


def _drivers(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(d).strip(): "" for d in value if str(d).strip()}
    if isinstance(value, Mapping):
        return {str(k).strip(): "" if v is None else str(v) for k, v in value.items()}
    raise InventoryError(f"{where}: expected a list of driver names or a name → version mapping")


FEATURES_SOURCE = "the inventory file's features list"


def _features(value: Any, where: str) -> dict[str, FeatureFact]:
    """A ``features:`` list is complete: what it names is present, every other feature absent (an
    empty key too). Without the key nothing is known."""
    if value is None:
        value = []
    if not isinstance(value, list):
        raise InventoryError(f"{where}: expected a list of features ({', '.join(FEATURES)})")
    named = {str(f).strip().lower() for f in value}
    unknown = sorted(named - set(FEATURES))
    if unknown:
        raise InventoryError(f"{where}: unknown feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
    return {name: FeatureFact(name in named, FEATURES_SOURCE) for name in FEATURES}


def _bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InventoryError(f"{where}: expected true or false")


def _names(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InventoryError(f"{where}: expected a list of VM names")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _enum(cls: Any, value: Any, where: str) -> Any:
    if value is None:
        return cls.UNKNOWN
    for member in cls:
        if str(value).lower() == member.value.lower():
            return member
    raise InventoryError(f"{where}: {value!r} is not one of {', '.join(m.value for m in cls)}")


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise InventoryError(f"{where}: not an ISO date/time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _refuse_unknown(entry: Mapping[Any, Any], known: Iterable[str], where: str) -> None:
    for key in entry:
        if str(key) not in known:
            hint = did_you_mean(str(key), known)
            raise InventoryError(f"{where}.{key}: unknown field{hint}; free-form data goes under labels:")


def parse_host(entry: Any, where: str, lookup: BuildLookup | None = None) -> Host:
    if not isinstance(entry, Mapping):
        raise InventoryError(f"{where}: each host must be a mapping with at least a name")
    name = _str(entry.get("name"), f"{where}.name")
    if not name:
        raise InventoryError(f"{where}: missing name")
    where = f"{where} ({name})"
    _refuse_unknown(entry, KNOWN, where)
    build: int | None = None
    if entry.get("build") is not None:
        raw = entry["build"]
        try:
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise ValueError(raw)
            build = int(str(raw).strip().removeprefix("build-"))
        except ValueError:
            raise InventoryError(f"{where}.build: not a build number: {show(raw)}") from None
        if not 0 < build <= MAX_BUILD:
            raise InventoryError(f"{where}.build: {build} is not a build number (1 to {MAX_BUILD})")
    version = _str(entry.get("version"), f"{where}.version")
    if build is None and version is None:
        raise InventoryError(f"{where}: needs a build or a version")
    release_name = _str(entry.get("release_name"), f"{where}.release_name")
    if build is not None and lookup is not None and (known := lookup(build)):
        version = version or known[0]
        release_name = release_name or known[1]
    tags = entry.get("tags") or []
    if not isinstance(tags, list):
        raise InventoryError(f"{where}.tags: expected a list of words")
    issues = entry.get("config_issues") or []
    if not isinstance(issues, list):
        raise InventoryError(f"{where}.config_issues: expected a list")
    vm_count = entry.get("vm_count")
    if vm_count is not None and (isinstance(vm_count, bool) or not isinstance(vm_count, int)):
        raise InventoryError(f"{where}.vm_count: expected a whole number")
    labels = entry.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise InventoryError(f"{where}.labels: expected a mapping of free-form data")
    extra: dict[str, Any] = {str(k): v for k, v in labels.items()}
    if isinstance(entry.get("boot_device"), Mapping) and entry["boot_device"].get("override"):
        extra["boot_device_override"] = True
    return Host(
        name=name,
        build=build,
        version=version,
        release_name=release_name,
        vcenter=_str(entry.get("vcenter"), f"{where}.vcenter"),
        datacenter=_str(entry.get("datacenter"), f"{where}.datacenter"),
        cluster=_str(entry.get("cluster"), f"{where}.cluster"),
        boot_device=_boot(entry.get("boot_device"), f"{where}.boot_device"),
        bootbank_mounted=_bool(entry.get("bootbank_mounted"), f"{where}.bootbank_mounted"),
        vendor=_str(entry.get("vendor"), f"{where}.vendor"),
        model=_str(entry.get("model"), f"{where}.model"),
        serial=_str(entry.get("serial"), f"{where}.serial"),
        drivers=_drivers(entry.get("drivers"), f"{where}.drivers"),
        tags=frozenset(str(t).strip().lower() for t in tags if str(t).strip()),
        connection_state=_enum(ConnectionState, entry.get("connection_state"), f"{where}.connection_state"),
        power_state=_enum(PowerState, entry.get("power_state"), f"{where}.power_state"),
        in_maintenance=_bool(entry.get("in_maintenance"), f"{where}.in_maintenance"),
        boot_time=_time(entry.get("boot_time"), f"{where}.boot_time"),
        overall_status=_str(entry.get("overall_status"), f"{where}.overall_status"),
        config_issues=tuple(str(i) for i in issues),
        vm_count=vm_count,
        address=_str(entry.get("address"), f"{where}.address"),
        extra=extra,
        features=_features(entry["features"], f"{where}.features") if "features" in entry else {},
        ad_joined=_bool(entry.get("ad_joined"), f"{where}.ad_joined"),
        usb_controller_vms=_names(entry.get("usb_controller_vms"), f"{where}.usb_controller_vms"),
    )


def parse_inventory(data: Any, source: str, lookup: BuildLookup | None = None) -> list[Host]:
    if isinstance(data, Mapping) and "hosts" in data:
        data = data["hosts"]
    if not isinstance(data, list):
        raise InventoryError(f"{source}: expected a list of hosts or a mapping with 'hosts'")
    hosts = [parse_host(e, f"{source}: hosts[{i}]", lookup) for i, e in enumerate(data)]
    seen: dict[str, int] = {}
    for i, h in enumerate(hosts):
        if h.name.lower() in seen:
            raise InventoryError(
                f"{source}: hosts[{i}] ({h.name}): duplicate of hosts[{seen[h.name.lower()]}]"
            )
        seen[h.name.lower()] = i
    return hosts


def load_inventory(path: str | Path, lookup: BuildLookup | None = None) -> list[Host]:
    p = Path(path)
    if p.suffix.lower() != ".json":
        try:
            return parse_inventory(load_yaml(p), str(p), lookup)
        except ConfigError as exc:
            raise InventoryError(str(exc)) from None
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InventoryError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{p}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{p}: not valid JSON: {exc}") from None
    except RecursionError:
        raise InventoryError(f"{p}: nested too deeply") from None
    return parse_inventory(data, str(p), lookup)


def build_lookup(catalog: BuildCatalog) -> BuildLookup:
    """Build numbers named by a file → (version, release name) from the build catalog."""

    def lookup(build: int) -> tuple[str | None, str | None] | None:
        known = catalog.lookup(build)
        return (known.version, known.name) if known else None

    return lookup
