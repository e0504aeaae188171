"""Out-of-band power through jobs: vcsimlab for vCenter, the sushy-tools emulator (fake driver) as BMC.

A host vCenter marks not responding is shut down through its BMC (GracefulShutdown, which the hung
guest ignores, then ForceOff); ``power on`` sends On and waits until vCenter sees the host again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.actions.bmc import BmcConfig, BmcDirectory
from bot.actions.redfish import PowerState, RedfishClient
from bot.config import SecretRef
from bot.model import JobState
from tests.fixtures.redfish import SushyEmulator
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import lab_bot

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_redfish

HOST = "esx-disk-02.lab.local"
PW_VAR = "ESXBOT_TEST_BMC_PASSWORD"


def _bmc(url: str, system: str) -> BmcConfig:
    return BmcConfig(
        name="bmc-disk-02", url=url, username="esxbot", password=SecretRef.parse(f"env:{PW_VAR}"),
        host=HOST, serial=system, timeout=5.0,
    )  # fmt: skip


async def _ensure(config: BmcConfig, state: PowerState) -> None:
    async with RedfishClient(config, poll_interval=0.2) as client:
        if await client.power_state() is state:
            return
        if state is PowerState.ON:
            await client.power_on(20)
        else:
            await client.graceful_then_force_off(0.1, 20)


async def test_not_responding_host_is_shut_down_by_its_bmc_and_powered_on_again(
    vcsim_factory: VcsimFactory,
    tmp_path: Path,
    sushy_emulator: SushyEmulator,
    bmc_front: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PW_VAR, sushy_emulator.password)
    lab = vcsim_factory()
    system = sushy_emulator.systems["forced"]
    async with bmc_front(hung_guest=True) as (url, front):
        config = _bmc(url, system)
        await _ensure(config, PowerState.ON)
        async with lab_bot(lab, tmp_path, BmcDirectory((config,))) as bot:
            lab.hook("connection", host=HOST, state="notResponding")
            preview = await bot.say("shutdown esx-disk-02")
            assert preview.ok, preview.summary
            assert "GracefulShutdown" in " ".join(str(b) for b in preview.blocks)
            assert sushy_emulator.password not in str(preview)
            started = await bot.say(f"yes {preview.data['confirm']['token']}")
            job = await bot.runner.wait(started.data["job"])
            assert job.state is JobState.SUCCEEDED, job.result
            assert [s.name for s in job.steps] == ["redfish-off"]
            assert "forced-after-timeout" in (job.steps[0].result or "")
            assert front.dropped  # the GracefulShutdown reached the BMC, the guest ignored it
            async with RedfishClient(config) as client:
                assert await client.power_state() is PowerState.OFF

            async def boots_when_bmc_is_on() -> None:  # the host's side: BMC On → ESXi boots
                async with RedfishClient(config, poll_interval=0.2) as client:
                    await client.wait_for_power_state(PowerState.ON, 20)
                lab.hook("power", host=HOST, state="on")

            booting = asyncio.create_task(boots_when_bmc_is_on())
            started = await bot.confirm("power on esx-disk-02")
            job = await bot.runner.wait(started.data["job"])
            await booting
            assert job.state is JobState.SUCCEEDED, job.result
            assert [s.name for s in job.steps] == ["redfish-on", "wait-reconnect"]
            assert lab.hosts()[HOST]["connection_state"] == "connected"
            async with RedfishClient(config) as client:
                assert await client.power_state() is PowerState.ON
            audit = [o for _, c, o in await bot.audit() if c and c.startswith("job:")]
            assert audit.count("succeeded") == 2


async def test_not_responding_host_without_bmc_is_refused(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        lab.hook("connection", host=HOST, state="notResponding")
        reply = await bot.say("shutdown esx-disk-02")
        assert not reply.ok and "no BMC is configured" in " ".join(str(b) for b in reply.blocks)
        reply = await bot.say("power on esx-disk-02")
        assert not reply.ok
