"""The simulated fleet behind demo mode, driven through the real dispatcher, job runner and Redfish client.

Each test opens the whole bot as ``esxbot run`` does with nothing configured (demo mode), on the real
clock with a short step time, and checks what the operations left in the fleet and in the replies.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.alerts.engine import AlertEngine
from bot.clock import SystemClock
from bot.config import Settings
from bot.messages import Command, Confirm, Conversation, Reply, User
from bot.model import AlertState, JobState
from bot.runtime.app import App

STEP = 0.05
USER = "console:admin"


def demo_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=str(tmp_path / "esxbot.db"),
        base_dir=str(tmp_path),
        extra={"demo_fleet": {"step": STEP}, **extra},
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    opened = await App.open(demo_settings(tmp_path), clock=SystemClock())
    yield opened
    await opened.close()


async def say(app: App, text: str) -> Reply:
    command = Command(
        user=User(USER),
        conversation=Conversation(platform="console", room="console", direct=True),
        text=text,
        sent_at=app.services.clock.now(),
    )
    return await app.handle(command)


async def run_job(app: App, text: str) -> int:
    preview = await say(app, text)
    tokens = [b.token for b in preview.blocks if isinstance(b, Confirm)]
    assert preview.ok and len(tokens) == 1, preview.summary
    started = await say(app, f"yes {tokens[0]}")
    assert started.ok, started.summary
    job_id = int(started.data["job"])
    assert app.services.jobs is not None
    job = await asyncio.wait_for(app.services.jobs.wait(job_id), 30)
    assert job.state is JobState.SUCCEEDED, job.result
    return job_id


def host_data(reply: Reply) -> dict[str, object]:
    return dict(reply.data["host"])


async def test_patch_esx01_to_u2c_runs_every_step_and_its_usb_fixes_go(app: App) -> None:
    before = await say(app, "check esx01")
    assert host_data(before)["build"] == 17867351
    assert "PR 2777003" in str(before.blocks)

    job_id = await run_job(app, "patch esx01 to 7.0U2c")

    assert app.services.jobs is not None
    job = await app.services.jobs.repo.get(job_id)
    assert job is not None
    assert [s.name for s in job.steps] == [
        "enter-maintenance", "install", "reboot", "wait-reconnect", "verify-build", "exit-maintenance",
    ]  # fmt: skip
    assert all(s.result and not s.result.startswith("failed") for s in job.steps)
    assert "build 18426014" in (job.steps[4].result or "")
    after = await say(app, "check esx01")
    facts = host_data(after)
    assert facts["build"] == 18426014 and facts["release_name"] == "ESXi 7.0 Update 2c"
    assert facts["in_maintenance"] is False and facts["connection_state"] == "connected"
    assert "PR 2777003" not in str(after.blocks)  # the USB-boot fix is installed now
    assert "simulated host" in str(after.blocks)
    # its VMs went to the other hosts of the cluster while it was in maintenance mode
    assert app.demo is not None and app.demo.fleet.vms_on("esx01.lab.local") == []


async def test_shutdown_esx02_takes_the_redfish_path_then_power_on_brings_it_back(app: App) -> None:
    preview = await say(app, "shutdown esx02")
    assert "its BMC will do it" in str(preview.blocks)
    job_id = await run_job(app, "shutdown esx02")
    assert app.services.jobs is not None and app.demo is not None
    job = await app.services.jobs.repo.get(job_id)
    assert job is not None and [s.name for s in job.steps] == ["redfish-off"]
    # the host lost its boot device and ignores the ACPI request: ForceOff after the graceful timeout
    assert "forced-after-timeout" in (job.steps[0].result or "")
    sim = app.demo.fleet.host("esx02")
    assert sim is not None and sim.power == "poweredOff"

    await run_job(app, "power on esx02")
    facts = host_data(await say(app, "check esx02"))
    assert facts["power_state"] == "poweredOn" and facts["connection_state"] == "connected"
    assert facts["bootbank_mounted"] is True  # a fresh boot finds the USB stick again


async def test_maintenance_enter_esx03_evacuate_moves_its_vms(app: App) -> None:
    assert app.demo is not None
    fleet = app.demo.fleet
    before = {vm.name for vm in fleet.vms_on("esx03.lab.local")}
    assert len(before) == 4
    await run_job(app, "maintenance enter esx03 --evacuate")
    assert fleet.vms_on("esx03.lab.local") == []
    moved_to = {vm.host for vm in fleet.state.vms if vm.name in before}
    assert moved_to <= {"esx01.lab.local", "esx04.lab.local"}  # esx02 does not respond
    assert host_data(await say(app, "check esx03"))["in_maintenance"] is True


async def test_demo_release_u2d_is_announced_once_naming_the_powerflex_host(app: App) -> None:
    await app.prepare()
    await app.services.store.subscriptions.add(
        "console:console", "releases", by=USER, at=app.services.clock.now()
    )
    first = await say(app, "demo release 7.0 U2d")
    second = await say(app, "demo release 7.0 U2d")
    assert first.ok and second.ok and "announced before" in second.summary
    rows = await app.db.fetchall("SELECT payload FROM outbox WHERE room = ?", ("console",))
    announcements = [json.loads(r["payload"]) for r in rows if "7.0 Update 2d" in r["payload"]]
    assert len(announcements) == 1
    assert "pflex01" in json.dumps(announcements[0])


async def test_break_pages_precursor_then_loss_and_fix_resolves(app: App) -> None:
    engine = app.services.alerts
    assert isinstance(engine, AlertEngine) and app.demo is not None
    watcher = asyncio.create_task(app.demo.watch(engine))
    try:
        reply = await say(app, "demo break esx01")
        assert reply.ok and "precursor" in reply.summary
        precursor = await engine.alerts.open_for("esx01.lab.local", "boot-device-precursor")
        assert precursor is not None
        await asyncio.sleep(app.demo.loss_after + 0.3)
        loss = await engine.alerts.open_for("esx01.lab.local", "bootbank-loss")
        assert loss is not None
        assert "syslog:demo" in loss.sources
        acked = await say(app, f"ack {loss.id}")
        assert acked.ok
        fixed = await say(app, "demo fix esx01")
        assert fixed.ok
        done = await engine.alerts.get(loss.id)
        assert done is not None and done.state is AlertState.RESOLVED
        assert host_data(await say(app, "check esx01"))["bootbank_mounted"] is True
    finally:
        watcher.cancel()


async def test_reset_restores_the_fleet(app: App) -> None:
    await run_job(app, "maintenance enter esx03 --evacuate")
    assert (await say(app, "demo reset")).ok
    assert app.demo is not None and len(app.demo.fleet.vms_on("esx03.lab.local")) == 4
    assert host_data(await say(app, "check esx03"))["in_maintenance"] is False


async def test_fleet_state_survives_a_restart_and_a_bad_file_starts_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = await App.open(demo_settings(tmp_path), clock=SystemClock())
    try:
        await run_job(first, "maintenance enter esx03")
    finally:
        await first.close()
    second = await App.open(demo_settings(tmp_path), clock=SystemClock())
    try:
        assert host_data(await say(second, "check esx03"))["in_maintenance"] is True
    finally:
        await second.close()
    (tmp_path / "var" / "demo-fleet.json").write_text('{"hosts": [{"name": 1}], "vms": 7}')
    with caplog.at_level(logging.WARNING, logger="bot.demo.fleet"):
        third = await App.open(demo_settings(tmp_path), clock=SystemClock())
    try:
        assert "starting the bundled fleet" in caplog.text
        assert host_data(await say(third, "check esx03"))["in_maintenance"] is False
    finally:
        await third.close()


async def test_demo_commands_and_fleet_exist_only_in_demo_mode(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("- {name: esx01.lab.local, build: 17867351}\n")
    real = await App.open(
        Settings(
            database_url=str(tmp_path / "real.db"), base_dir=str(tmp_path), inventory_file=str(inventory)
        )
    )
    try:
        assert real.demo is None and real.services.demo is None
        assert "demo" not in real.services.commands
        refused = await say(real, "demo reset")
        assert not refused.ok and "Unknown command" in refused.summary
    finally:
        await real.close()


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"step": 0}, r"demo_fleet\.step: expected a number between 0\.01 and 60"),
        ({"step": "fast"}, r"demo_fleet\.step: expected a number"),
        ({"speed": 1}, "unknown setting"),
    ],
)
async def test_bad_demo_fleet_settings_name_the_key(tmp_path: Path, section: object, needle: str) -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match=needle):
        await App.open(demo_settings(tmp_path, demo_fleet=section))


async def test_demo_bmc_refuses_wrong_credentials_and_bad_requests(app: App, tmp_path: Path) -> None:
    import aiohttp

    from bot.actions.bmc import BmcConfig
    from bot.actions.redfish import ErrorKind, RedfishClient, RedfishError
    from bot.config import SecretRef

    assert app.demo is not None
    real = app.demo.bmc.directory().find(host_name="esx01.lab.local")
    assert real is not None
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    config = BmcConfig(real.name, real.url, real.username, SecretRef("file", str(wrong)), serial=real.serial)
    with pytest.raises(RedfishError) as refused:
        async with RedfishClient(config) as client:
            await client.power_state()
    assert refused.value.kind is ErrorKind.AUTH
    async with RedfishClient(real) as client:
        assert (await client.system()).serial == "S314159"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{real.url}/redfish/v1/SessionService/Sessions", data=b"\xff{") as r:
            assert r.status == 400
        async with http.get(f"{real.url}/redfish/v1/Systems") as r:
            assert r.status == 401
    sim = app.demo.fleet.host("esx01")
    assert sim is not None and sim.power == "poweredOn"  # nothing above changed the host


async def test_reset_during_a_break_resolves_its_precursor(app: App) -> None:
    engine = app.services.alerts
    assert isinstance(engine, AlertEngine)
    assert (await say(app, "demo break esx04")).ok
    assert await engine.alerts.open_for("esx04.lab.local", "boot-device-precursor") is not None
    assert (await say(app, "demo reset")).ok
    assert await engine.alerts.open_for("esx04.lab.local", "boot-device-precursor") is None
    await asyncio.sleep(app.demo.loss_after + 0.2 if app.demo else 0)
    sim = app.demo.fleet.host("esx04") if app.demo else None
    assert sim is not None and sim.bootbank  # the reset also stopped the pending loss


async def test_shutdown_of_a_responding_host_shuts_its_guests_down_then_the_host(app: App) -> None:
    assert app.demo is not None and app.services.jobs is not None
    job_id = await run_job(app, "shutdown esx04")
    job = await app.services.jobs.repo.get(job_id)
    assert job is not None
    assert [s.name for s in job.steps] == ["shutdown-guests", "enter-maintenance", "shutdown-host"]
    # two guests shut themselves down; the one without VMware Tools is powered off by the policy
    assert job.steps[0].result == "2 of 3 VM(s) shut down by their guest OS; powered off: esx04-plex"
    await asyncio.sleep(2 * STEP)
    sim = app.demo.fleet.host("esx04")
    assert sim is not None and sim.power == "poweredOff" and sim.maintenance

    reboot = await say(app, "reboot esx04")
    assert not reboot.ok and "reboot needs vCenter" in str(reboot.blocks)
    await run_job(app, "power on esx04")
    assert host_data(await say(app, "check esx04"))["in_maintenance"] is True  # as it went down
    await run_job(app, "maintenance exit esx04")
    await run_job(app, "reboot esx03")
    facts = host_data(await say(app, "check esx03"))
    assert facts["connection_state"] == "connected" and facts["in_maintenance"] is True


async def test_a_bad_section_after_the_fleet_is_built_leaves_no_bmc_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the BMC keeps its password file
    with pytest.raises(ValueError, match="vm_policy"):
        await App.open(demo_settings(tmp_path, jobs={"vm_policy": "explode"}))
    gc.collect()  # an unclosed socket would warn here (warnings are errors)
    assert list(private.iterdir()) == []


async def test_a_patch_cut_by_a_restart_is_reported_with_the_fleets_state(tmp_path: Path) -> None:
    first = await App.open(demo_settings(tmp_path), clock=SystemClock())
    try:
        preview = await say(first, "patch esx01 to 7.0 U2c")
        token = next(b.token for b in preview.blocks if isinstance(b, Confirm))
        job_id = int((await say(first, f"yes {token}")).data["job"])
        assert first.services.jobs is not None
        async with asyncio.timeout(10):
            while (job := await first.services.jobs.repo.get(job_id)) is None or job.current_step < 2:
                await asyncio.sleep(0.01)
    finally:
        await first.close()  # the bot stops in the middle of the install or the reboot
    second = await App.open(demo_settings(tmp_path), clock=SystemClock())
    try:
        assert second.services.jobs is not None
        reported = await second.services.jobs.recover()
        assert [j.id for j in reported] == [job_id]
        job = await second.services.jobs.repo.get(job_id)
        assert job is not None and job.state is JobState.INTERRUPTED
        notes = await second.db.fetchall("SELECT payload FROM outbox WHERE payload LIKE ?", ("%restarted%",))
        assert any(
            "esx01.lab.local: " in r["payload"] and "in maintenance mode" in r["payload"] for r in notes
        )
        assert host_data(await say(second, "check esx01"))["in_maintenance"] is True  # left as it was
    finally:
        await second.close()


async def test_a_simulated_task_past_its_limit_fails_and_changes_nothing(app: App) -> None:
    from bot.vsphere.host_ops import ActionError

    assert app.demo is not None
    with pytest.raises(ActionError, match=r"did not finish within 0\.01 s"):
        await app.demo.ops.enter_maintenance("esx03", limit=0.01)
    sim = app.demo.fleet.host("esx03")
    assert sim is not None and not sim.maintenance
    assert len(app.demo.fleet.vms_on("esx03.lab.local")) == 4
