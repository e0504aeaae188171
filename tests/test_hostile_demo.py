"""Demo mode never drives real hardware: a BMC, esxcli, a depot or a vCenter in the settings ends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import ConfigError, Settings, VCenterSettings
from bot.messages import Confirm
from bot.runtime.app import App
from tests.fixtures.bot import MakeBot, bot_settings


@pytest.fixture
async def bmc() -> AsyncIterator[tuple[str, list[str]]]:
    """A BMC that records every request it gets (it should get none)."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", seen  # type: ignore[union-attr]
    await runner.cleanup()


async def test_power_on_a_demo_host_name_never_reaches_a_configured_bmc(
    make_bot: MakeBot, bmc: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = bmc
    monkeypatch.setenv("ESXBOT_TEST_DEMO_BMC_PW", "pw")
    entry = {"name": "esx01-bmc", "url": url, "username": "root", "password": "env:ESXBOT_TEST_DEMO_BMC_PW"}
    bot = await make_bot(roles={}, demo=None, extra={"bmcs": [{**entry, "host": "esx01.lab.local"}]})
    assert not bot.app.settings.demo_mode
    assert not bot.app.services.inventory.hosts()  # no demo hosts to join with the real BMC
    preview = await bot.say("power on esx01", as_user="console:admin")
    assert not preview.ok and not any(isinstance(b, Confirm) for b in preview.blocks)
    assert seen == []


@pytest.mark.parametrize(
    ("extra", "vcenters", "named"),
    [
        ({"bmcs": [{"name": "b"}]}, (), "bmcs"),
        ({"jobs": {"esxcli": {"username": "root"}}}, (), "jobs.esxcli"),
        ({"jobs": {"depot_url": "https://depot.example/{version}/index.xml"}}, (), "jobs.depot_url"),
        ({}, (VCenterSettings(name="vc", host="vc.example"),), "vcenters"),
    ],
)
def test_anything_that_touches_hardware_ends_demo_mode(
    extra: dict[str, object], vcenters: tuple[VCenterSettings, ...], named: str
) -> None:
    settings = Settings(extra=extra, vcenters=vcenters)
    assert settings.hardware == (named,)
    assert not settings.demo_mode
    assert Settings().demo_mode


async def test_an_explicit_demo_with_hardware_is_refused_at_start(tmp_path: Path) -> None:
    settings = bot_settings(tmp_path, demo=True, extra={"jobs": {"depot_url": "https://depot.example/x"}})
    with pytest.raises(ConfigError, match=r"demo: true cannot be combined with jobs\.depot_url"):
        await App.open(settings)
