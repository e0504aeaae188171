"""esxcli over SSH: a local asyncssh server that answers like ESXi's esxcli, started by each test.

The installer verifies the host key against known_hosts (a mismatch is refused before the password
or command is sent), sends exactly the quoted argv, and reports esxcli's own failure. A patch job on
a cluster configured for esxcli runs it between maintenance mode and reboot; the fake host stages
the build through vcsimlab's patch manager, so the verify step reads the real new build.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import pytest

from bot.actions.esxcli import EsxcliError, EsxcliInstaller, EsxcliSettings, pick_profile, update_command
from bot.clock import SystemClock
from bot.config import SecretRef
from bot.model import JobState, Release
from bot.store.release_records import ReleaseRepo
from bot.vsphere.host_actions import HostActions, door_for
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import SETTINGS, lab_bot

HOST = "esx-disk-02.lab.local"
PW_VAR = "ESXBOT_TEST_SSH_PASSWORD"
PASSWORD = "esx-Root-Pass1"
PROFILE = "ESXi-7.0U3v-24723872-standard"
DEPOT = "https://depot.lab.local/VMware-ESXi-7.0.3-24723872-depot.zip"
OK = (
    "Update Result\n   Message: The update completed successfully, but the system needs to be rebooted "
    "for the changes to be effective.\n   Reboot Required: true\n"
    "   VIBs Installed: VMware_bootbank_esx-base\n"
)


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "root" and password == PASSWORD


@dataclass
class FakeEsx:
    port: int = 0
    key: asyncssh.SSHKey = field(default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519"))
    commands: list[str] = field(default_factory=list)
    exit_status: int = 0
    answer: str = OK
    on_update: Callable[[str], Awaitable[None]] | None = None

    async def process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = str(process.command)
        self.commands.append(command)
        if self.on_update is not None and self.exit_status == 0:
            await self.on_update(command)
        process.stdout.write(self.answer)
        process.exit(self.exit_status)

    def known_hosts(self, path: Path, key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.key).export_public_key().decode().strip()
        path.write_text(f"[127.0.0.1]:{self.port} {public}\n")
        return str(path)


@asynccontextmanager
async def fake_esx() -> AsyncIterator[FakeEsx]:
    esx = FakeEsx()
    server = await asyncssh.create_server(
        _Server, "127.0.0.1", 0, server_host_keys=[esx.key], process_factory=esx.process
    )
    esx.port = server.sockets[0].getsockname()[1]
    try:
        yield esx
    finally:
        server.close()
        await server.wait_closed()


def _settings(esx: FakeEsx, known_hosts: str) -> EsxcliSettings:
    return EsxcliSettings(
        known_hosts=known_hosts, password=SecretRef.parse(f"env:{PW_VAR}"), port=esx.port, timeout=10.0,
        addresses={HOST: "127.0.0.1"},
    )  # fmt: skip


def test_command_is_validated_and_quoted() -> None:
    assert update_command(DEPOT, PROFILE) == f"esxcli software profile update -d {DEPOT} -p {PROFILE}"
    assert (
        shlex.split(update_command("/vmfs/volumes/ds1/depot.zip", PROFILE))[5]
        == "/vmfs/volumes/ds1/depot.zip"
    )
    for depot, profile in (
        (DEPOT, "ESXi-7.0U3v; reboot"),
        (DEPOT, "$(id)"),
        ("https://depot.lab.local/a b.zip", PROFILE),
        ("file:///etc/passwd", PROFILE),
        ("https://depot.lab.local/x.zip';id;'", PROFILE),
    ):
        with pytest.raises(EsxcliError):
            update_command(depot, profile)
    profiles = ("ESXi-7.0U3v-24723872-no-tools", "ESXi-7.0U3sv-24585291-standard", PROFILE, "bad profile")
    assert pick_profile(profiles, 24723872) == PROFILE
    assert pick_profile(("rm -rf /",), 1) is None


async def test_install_runs_the_quoted_command_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_VAR, PASSWORD)
    async with fake_esx() as esx:
        installer = EsxcliInstaller(_settings(esx, esx.known_hosts(tmp_path / "known_hosts")))
        done = await installer.profile_update(HOST, depot=DEPOT, profile=PROFILE)
        assert esx.commands == [update_command(DEPOT, PROFILE)]
        assert done.reboot_required and "completed successfully" in done.message
        esx.exit_status, esx.answer = (
            1,
            " [DependencyError]\n Message: VIB QLC_bootbank_qedentv requires esx-base\n",
        )
        with pytest.raises(EsxcliError, match="exited 1: VIB QLC_bootbank_qedentv requires esx-base"):
            await installer.profile_update(HOST, depot=DEPOT, profile=PROFILE)
        with pytest.raises(EsxcliError, match="not a valid DNS name"):
            await installer.profile_update("esx;id", depot=DEPOT, profile=PROFILE)


async def test_host_key_mismatch_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_VAR, PASSWORD)
    async with fake_esx() as esx:
        other = asyncssh.generate_private_key("ssh-ed25519")
        installer = EsxcliInstaller(_settings(esx, esx.known_hosts(tmp_path / "known_hosts", other)))
        with pytest.raises(EsxcliError, match="does not match known_hosts: refused"):
            await installer.profile_update(HOST, depot=DEPOT, profile=PROFILE)
        (tmp_path / "empty").write_text("")
        installer = EsxcliInstaller(_settings(esx, str(tmp_path / "empty")))
        with pytest.raises(EsxcliError, match="refused"):
            await installer.profile_update(HOST, depot=DEPOT, profile=PROFILE)
        assert esx.commands == []
    with pytest.raises(ValueError, match="known_hosts"):
        EsxcliSettings.from_mapping({"known_hosts": ""})


async def test_patch_job_installs_with_esxcli_between_maintenance_and_reboot(
    vcsim_factory: VcsimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_VAR, PASSWORD)
    lab = vcsim_factory()
    async with fake_esx() as esx:
        settings = replace(
            SETTINGS, methods={"prod": "esxcli"}, esxcli=_settings(esx, esx.known_hosts(tmp_path / "kh"))
        )
        async with lab_bot(lab, tmp_path, settings=settings) as bot:
            actions = HostActions(door_for(bot.vc), SystemClock(), poll=0.05)

            async def stage(command: str) -> None:  # the host's image database, kept by vcsimlab
                depot = shlex.split(command)[5]
                await actions.install_patch(HOST, [depot], limit=10)

            esx.on_update = stage
            preview = await bot.say("patch esx-disk-02 to 7.0 U3v --dry-run")
            assert "no image profile known for build 24723872" in " ".join(str(b) for b in preview.blocks)
            release = Release(line="7.0", name="ESXi 7.0 Update 3v", build=24723872, version="7.0.3",
                              image_profiles=("ESXi-7.0U3v-24723872-no-tools", PROFILE))  # fmt: skip
            await ReleaseRepo(bot.app.db).save(release, source="test", now=datetime.now(UTC))
            started = await bot.confirm("patch esx-disk-02 to 7.0 U3v --override vms")
            job = await bot.runner.wait(started.data["job"])
            assert job.state is JobState.SUCCEEDED, job.result
            assert [s.name for s in job.steps] == [
                "enter-maintenance", "esxcli-install", "reboot", "wait-reconnect", "verify-build",
                "exit-maintenance",
            ]  # fmt: skip
            assert esx.commands == [update_command(DEPOT, PROFILE)]
            assert PROFILE in (job.steps[1].result or "")
            assert lab.hosts()[HOST]["build"] == "24723872" and not lab.hosts()[HOST]["in_maintenance"]
            assert PASSWORD not in str(await bot.app.db.fetchall("SELECT payload FROM outbox"))
