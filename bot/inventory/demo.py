"""The bundled demo fleet: nine hosts modelled on the USB-boot story, for demo mode and tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from importlib import resources

import yaml

from bot.builds import BuildCatalog
from bot.clock import Clock
from bot.inventory.merged import StaticInventory
from bot.inventory.static_file import build_lookup, parse_inventory


def demo_inventory(catalog: BuildCatalog, clock: Clock) -> StaticInventory:
    """The bundled fleet; boot times keep their spacing but move so the last boot was 3 days ago."""
    text = resources.files("bot.data").joinpath("demo/inventory.yaml").read_text(encoding="utf-8")
    hosts = parse_inventory(yaml.safe_load(text), "demo inventory", build_lookup(catalog))
    boots = [h.boot_time for h in hosts if h.boot_time is not None]
    if boots:
        shift = clock.now() - timedelta(days=3) - max(boots)
        hosts = [replace(h, boot_time=h.boot_time + shift) if h.boot_time else h for h in hosts]
    return StaticInventory(hosts, "demo", clock.now())
