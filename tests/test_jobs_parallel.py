"""``patch <cluster> --parallel N`` on vcsimlab: hosts run side by side under their own locks; a
failure stops starting new hosts and lets the running ones finish only their current step; the
pre-checks refuse a width the cluster cannot take (vSAN, hosts already in maintenance mode, max)."""

from __future__ import annotations

from pathlib import Path

from bot.actions.prechecks import parallel_problem
from bot.model import JobState
from bot.store.job_records import JobRecord
from bot.vsphere.host_ops import HostState
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import lab_bot, token


def _span(job: JobRecord, host: str) -> tuple[float, float]:
    steps = [s for s in job.steps if s.host == host and s.started_at and s.ended_at]
    return min(s.started_at or 0 for s in steps), max(s.ended_at or 0 for s in steps)


async def test_parallel_cluster_patch_runs_two_at_a_time(vcsim_factory: VcsimFactory, tmp_path: Path) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        hosts = [h.name for h in bot.vc.hosts() if h.cluster == "lab"]
        preview = await bot.say("patch lab to 7.0 U3v --vm-action power-off --parallel 2")
        assert preview.ok, preview.summary
        assert "2 hosts at a time" in " ".join(str(b) for b in preview.blocks)
        started = await bot.say(f"yes {token(preview)}")
        locks = {h: await bot.runner.repo.lock_holder(h) for h in hosts}
        assert set(locks.values()) == {started.data["job"]}  # every host locked by this job
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.SUCCEEDED, job.result
        spans = [_span(job, h) for h in hosts]
        assert spans[1][0] < spans[0][1] and spans[0][0] < spans[1][1]  # hosts 0 and 1 side by side
        assert spans[2][0] >= min(spans[0][1], spans[1][1])  # never more than two at once
        assert spans[3][0] >= sorted(end for _, end in spans[:3])[1]
        assert all(lab.hosts()[h]["build"] == "24723872" for h in hosts)
        assert not any(lab.hosts()[h]["in_maintenance"] for h in hosts)
        assert [await bot.runner.repo.lock_holder(h) for h in hosts] == [None] * 4


async def test_parallel_failure_stops_new_hosts_and_running_ones_after_their_step(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        hosts = [h.name for h in bot.vc.hosts() if h.cluster == "lab"]
        lab.hook("fail-next-patch", host=hosts[1], message="depot checksum mismatch")
        started = await bot.confirm("patch lab to 7.0 U3v --vm-action power-off --parallel 2")
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.FAILED
        failed = [s for s in job.steps if s.result and s.result.startswith("failed")]
        assert [(s.host, s.name) for s in failed] == [(hosts[1], "install")]
        assert all(s.started_at is None for s in job.steps if s.host in hosts[2:])
        first = [s for s in job.steps if s.host == hosts[0]]
        assert all(s.ended_at is not None for s in first if s.started_at is not None)  # no step cut short
        assert any(s.started_at is None for s in first)  # …and no new step after the failure
        assert job.result and "depot checksum mismatch" in job.result
        assert f"{hosts[1]} is now" in job.result and "left in maintenance mode" in job.result
        assert hosts[2] in job.result and hosts[3] in job.result
        assert lab.hosts()[hosts[1]]["in_maintenance"]
        assert all(lab.hosts()[h]["build"] == "21930508" for h in hosts[2:])
        assert [await bot.runner.repo.lock_holder(h) for h in hosts] == [None] * 4


async def test_parallel_is_refused_where_the_cluster_cannot_take_it(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        for width, why in ((4, "at most 3 at a time"), (9, "configured maximum of 4"), (0, "from 1 to 32")):
            reply = await bot.say(f"patch lab to 7.0 U3v --vm-action power-off --parallel {width}")
            assert not reply.ok and why in reply.summary, reply.summary
        reply = await bot.say("patch esx-usb-01 to 7.0 U2c --parallel 2")
        assert not reply.ok and "needs at least 2 target hosts" in reply.summary
        assert await bot.runner.repo.listing() == []

    def state(name: str, *, vsan: bool = False, mm: tuple[str, ...] = ()) -> HostState:
        return HostState(
            name=name, connection="connected", power="poweredOn", in_maintenance=False, version="7.0.3",
            build=1, boot_time=None, bootbank_mounted=True, reboot_required=False, cluster="c1",
            vsan_enabled=vsan, cluster_hosts_in_maintenance=mm, cluster_size=5,
        )  # fmt: skip

    names = ["a", "b", "c"]
    assert parallel_problem([state(n) for n in names], 3, 4) is None
    assert "vSAN" in (parallel_problem([state(n, vsan=n == "b") for n in names], 2, 4) or "")
    busy = parallel_problem([state(n, mm=("d", "e")) for n in names], 3, 4)
    assert busy and "2 already in maintenance mode" in busy
    assert parallel_problem([state(n) for n in names], 1, 1) is None
