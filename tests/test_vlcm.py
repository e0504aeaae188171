"""vLCM remediation through jobs: a fake vCenter REST server (tests/vlcm_fake.py) that follows the
documented vSphere Automation API, driving vcsimlab hosts so the build check reads real host state.

Covers the job (one cluster-level step with progress, then every host's build verified), a failed
remediation task, a task that never ends (timeout), a refused login, and an identifier vCenter
should never return (it is not put into a URL path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.model import JobState
from bot.vsphere.client import VSphere
from bot.vsphere.host_actions import HostActions, door_for
from bot.vsphere.host_ops import ActionError
from bot.vsphere.lifecycle import Lifecycle
from bot.vsphere.session import Endpoint
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import SETTINGS, lab_bot, token
from tests.vlcm_fake import FakeVlcm, fake_vlcm

U3V = 24723872
DEPOT = "https://depot.lab.local/VMware-ESXi-{version}-{build}-depot.zip"


def _server(hosts: Sequence[str]) -> FakeVlcm:
    return FakeVlcm(
        user="vlcm-bot@vsphere.local",
        password="s3cret-Pass",
        clusters={"lab": "domain-c7"},
        hosts={name: f"host-{100 + i}" for i, name in enumerate(hosts)},
        base_images=["7.0.3-0.105.22348816", f"7.0.3-0.135.{U3V}", "8.0.3-0.35.24280767"],
    )


def _lifecycle(server: FakeVlcm, *, password: str | None = None) -> Lifecycle:
    endpoint = Endpoint(name="lab", host="127.0.0.1", user=server.user, password=password or server.password)
    return Lifecycle(endpoint, SystemClock(), poll=0.05, base_url=server.url)


def _remediator(vc: VSphere) -> object:
    """What vLCM does to each host, through the simulator: VMs off, MM, install, reboot, back, exit MM."""
    actions = HostActions(door_for(vc), SystemClock(), poll=0.05)

    async def remediate(names: Sequence[str]) -> None:
        for name in names:
            state = await actions.state(name)
            boot = state.boot_time
            on = [vm.name for vm in state.powered_on_vms]  # remediation setting "power off VMs"
            await actions.vm_power(name, on, "power-off", limit=20)
            await actions.enter_maintenance(name, limit=20)
            await actions.install_patch(name, [DEPOT.format(version="7.0.3", build=U3V)], limit=20)
            await actions.reboot_host(name, force=False, limit=20)
            await actions.wait_reconnect(name, booted_after=boot, limit=20)
            await actions.exit_maintenance(name, limit=20)

    return remediate


async def test_vlcm_cluster_patch_is_one_remediation_then_every_build_verified(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    settings = replace(SETTINGS, methods={"lab": "vlcm"}, vlcm_timeout=30.0)
    hosts = sorted(name for name, h in lab.hosts().items() if name not in _prod(lab))
    async with (
        fake_vlcm(_server(hosts)) as server,
        lab_bot(lab, tmp_path, settings=settings, lifecycle=lambda vc: {vc.name: _lifecycle(server)}) as bot,
    ):
        server.remediate = _remediator(bot.vc)  # type: ignore[assignment]
        names = [h.name for h in bot.vc.hosts() if h.cluster == "lab"]
        preview = await bot.say("patch lab to 7.0 U3v --override vms")
        assert preview.ok, preview.summary
        shown = " ".join(str(b) for b in preview.blocks)
        assert "vLCM remediates lab itself" in shown and "vlcm-apply" in shown
        started = await bot.say(f"yes {token(preview)}")
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.SUCCEEDED, job.result
        assert [(s.name, s.host) for s in job.steps] == [
            ("vlcm-apply", "lab"),
            *[("verify-build", n) for n in names],
        ]
        assert f"base image 7.0.3-0.135.{U3V}" in (job.steps[0].result or "")
        assert all(lab.hosts()[n]["build"] == str(U3V) for n in names)
        assert not any(lab.hosts()[n]["in_maintenance"] for n in names)
        assert server.desired == {"domain-c7": f"7.0.3-0.135.{U3V}"}
        apply = next(c for c in server.calls if "action=apply" in c[1])
        assert apply[1] == "/api/esx/settings/clusters/domain-c7/software?action=apply&vmw-task=true"
        assert sorted(apply[2]["hosts"]) == sorted(server.hosts[n] for n in names)
        assert apply[2]["commit"].startswith("commit-") and apply[2]["accept_eula"] is True
        assert server.calls[-1][:2] == ("DELETE", "/api/session")
        notes = await bot.app.db.fetchall(
            "SELECT payload FROM outbox WHERE edit_of = ?", (f"job-{job.id}-progress",)
        )
        assert any("vLCM task" in r["payload"] and "%" in r["payload"] for r in notes)


async def test_failed_remediation_stops_before_the_build_checks(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    settings = replace(SETTINGS, methods={"lab": "vlcm"})
    hosts = sorted(name for name in lab.hosts() if name not in _prod(lab))
    server = _server(hosts)
    server.fail_with = "Host esx-lab is not compatible with the image: missing driver i40en"
    async with (
        fake_vlcm(server),
        lab_bot(lab, tmp_path, settings=settings, lifecycle=lambda vc: {vc.name: _lifecycle(server)}) as bot,
    ):
        started = await bot.confirm("patch lab to 7.0 U3v --override vms")
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.FAILED
        assert "missing driver i40en" in (job.steps[0].result or "")
        assert all(s.started_at is None for s in job.steps[1:])
        assert job.result and all(f"{h} is now connected" in job.result for h in hosts)


async def test_lifecycle_times_out_refuses_bad_login_and_odd_identifiers() -> None:
    server = _server(["esx-a.lab.local"])
    server.hang = True
    said: list[str] = []

    async def progress(note: str) -> None:
        said.append(note)

    async with fake_vlcm(server):
        life = _lifecycle(server)
        with pytest.raises(ActionError, match=r"did not finish within 0\.3 s"):
            await life.remediate("lab", ["esx-a.lab.local"], build=U3V, limit=0.3, progress=progress)
        assert any("Remediating hosts" in s for s in said)
        with pytest.raises(ActionError, match="login refused"):
            await _lifecycle(server, password="wrong").remediate(
                "lab", ["esx-a.lab.local"], build=U3V, limit=1, progress=progress
            )
        with pytest.raises(ActionError, match="no ESXi base image for build 12345"):
            await life.remediate("lab", ["esx-a.lab.local"], build=12345, limit=1, progress=progress)
        with pytest.raises(ActionError, match=r"no single cluster named lab/\.\./x"):
            await life.remediate("lab/../x", ["esx-a.lab.local"], build=U3V, limit=1, progress=progress)
        server.clusters["lab"] = "domain-c7/../../api/session"
        before = len(server.calls)
        with pytest.raises(ActionError, match="unexpected cluster identifier"):
            await life.remediate("lab", ["esx-a.lab.local"], build=U3V, limit=1, progress=progress)
        assert not any("/software" in c[1] for c in server.calls[before:])


def _prod(lab: object) -> set[str]:
    return {
        "esx-usb-01.lab.local",
        "esx-disk-02.lab.local",
        "esx-bootbank-03.lab.local",
        "esx-down-04.lab.local",
    }
