"""Host-action jobs end to end against vcsimlab: patch, rolling cluster patch with a failure,
shutdown, host locks, restart → interrupted, cancel, and refused/audited confirmations."""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path

from bot.messages import Command, Conversation, User
from bot.model import JobState
from bot.runtime.logconfig import CorrelationFilter
from tests.fixtures.bot import OPERATOR, VIEWER
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import lab_bot, token

USB = "esx-usb-01.lab.local"
OLGA = "console:olga"


async def test_patch_usb_host_end_to_end(vcsim_factory: VcsimFactory, tmp_path: Path) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        preview = await bot.say("patch esx-usb-01 to 7.0 U2c")
        assert preview.ok, preview.summary
        text = preview.summary + " ".join(str(b) for b in preview.blocks)
        assert "ESXi 7.0 Update 2c" in text and "enter-maintenance" in text and "install" in text
        started = await bot.say(f"yes {token(preview)}")
        assert started.ok, started.summary
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.SUCCEEDED, job.result
        assert [s.name for s in job.steps] == [
            "enter-maintenance",
            "install",
            "reboot",
            "wait-reconnect",
            "verify-build",
            "exit-maintenance",
        ]
        assert all(s.result and not s.result.startswith("failed") for s in job.steps)
        assert job.confirmed_by == OPERATOR
        host = lab.hosts()[USB]
        assert (host["build"], host["in_maintenance"], host["connection_state"]) == (
            "18426014",
            False,
            "connected",
        )
        rows = await bot.app.db.fetchall("SELECT key, edit_of, thread FROM outbox WHERE key LIKE 'job-%'")
        assert rows[0]["key"] == f"job-{job.id}-progress" and rows[0]["thread"] == "m1"
        assert sum(1 for r in rows if r["edit_of"] == f"job-{job.id}-progress") >= len(job.steps)
        assert await bot.runner.repo.lock_holder(USB) is None
        outcomes = [o for _, c, o in await bot.audit() if c == "job:patch"]
        assert outcomes.count("step-ok") == 6 and outcomes[-1] == "succeeded"


async def test_cluster_patch_stops_at_the_failed_second_host(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        hosts = [h.name for h in bot.vc.hosts() if h.cluster == "lab"]
        lab.hook("fail-next-patch", host=hosts[1], message="depot checksum mismatch")
        preview = await bot.say("patch lab to 7.0 U3v --vm-action power-off")
        assert preview.ok, preview.summary
        started = await bot.say(f"yes {token(preview)}")
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.FAILED
        first = [s for s in job.steps if s.host == hosts[0]]
        assert all(s.result and not s.result.startswith("failed") for s in first)
        failed = next(s for s in job.steps if s.result and s.result.startswith("failed"))
        assert (failed.host, failed.name) == (hosts[1], "install")
        assert "depot checksum mismatch" in (failed.result or "")
        assert all(s.started_at is None for s in job.steps if s.host in hosts[2:])
        assert job.result and "left in maintenance mode" in job.result and hosts[2] in job.result
        now = lab.hosts()
        assert now[hosts[0]]["build"] == "24723872" and not now[hosts[0]]["in_maintenance"]
        assert now[hosts[1]]["in_maintenance"] and now[hosts[1]]["build"] == "21930508"
        assert now[hosts[2]]["build"] == "21930508" and not now[hosts[2]]["in_maintenance"]


async def test_shutdown_stops_guests_then_the_host(vcsim_factory: VcsimFactory, tmp_path: Path) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        name = next(h.name for h in bot.vc.hosts() if h.cluster == "lab" and lab.hosts()[h.name]["vms"])
        actions = bot.runner.require_actions(bot.vc.get(name))  # type: ignore[arg-type]
        assert (await actions.state(name)).powered_on_vms
        started = await bot.confirm(f"shutdown {name}")
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.SUCCEEDED, job.result
        assert [s.name for s in job.steps] == ["shutdown-guests", "enter-maintenance", "shutdown-host"]
        assert "shut down by their guest OS" in (job.steps[0].result or "")
        assert "powered off" not in (job.steps[0].result or "")
        for _ in range(40):
            if lab.hosts()[name]["power_state"] == "poweredOff":
                break
            await asyncio.sleep(0.1)
        assert lab.hosts()[name]["power_state"] == "poweredOff"


async def test_locked_host_refuses_a_second_operator_and_restart_reports_interrupted(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        name = next(h.name for h in bot.vc.hosts() if h.cluster == "lab" and lab.hosts()[h.name]["vms"])
        early = await bot.say(f"patch {name} to 7.0 U3v --vm-action power-off", as_user=OLGA)
        assert early.ok
        # DRS does not move the VMs in the lab, so maintenance mode waits: the job stays running.
        started = await bot.confirm(f"maintenance enter {name} --override vms --timeout 15s")
        job_id = started.data["job"]
        for _ in range(50):
            current = await bot.runner.repo.get(job_id)
            if current and current.steps[0].started_at is not None:
                break
            await asyncio.sleep(0.05)
        late = await bot.say(f"yes {token(early)}", as_user=OLGA)
        assert not late.ok and f"busy with job #{job_id}" in late.summary
        refused = await bot.say(f"patch {name} to 7.0 U3v --vm-action power-off", as_user=OLGA)
        assert not refused.ok and f"busy with job #{job_id}" in refused.summary
        await bot.runner.close()  # the bot dies mid-step
        runner = bot.new_runner()
        [report] = await runner.recover()
        assert report.state is JobState.INTERRUPTED
        assert report.steps[0].result == "interrupted: outcome unknown"
        assert report.result == "bot restarted while the job ran"
        shown = await bot.say(f"job {job_id}", as_user=VIEWER)
        assert "interrupted" in shown.summary and "enter-maintenance" in shown.summary
        final = await bot.app.db.fetchone(
            "SELECT payload FROM outbox WHERE key = ?", (f"job-{job_id}-progress/final",)
        )
        assert (
            final and "Host state now" in final["payload"] and "not in maintenance mode" in final["payload"]
        )
        assert await runner.recover() == []  # reported once; nothing re-run
        again = await runner.repo.get(job_id)
        assert again and again.state is JobState.INTERRUPTED and again.current_step == 0
        assert await runner.repo.lock_holder(name) is None


async def test_cancel_stops_before_the_next_step(vcsim_factory: VcsimFactory, tmp_path: Path) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        name = next(h.name for h in bot.vc.hosts() if h.cluster == "lab" and lab.hosts()[h.name]["vms"])
        started = await bot.confirm(f"maintenance enter {name} --vm-action power-off")
        cancelled = await bot.say(f"cancel {started.data['job']}")
        assert cancelled.ok
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.CANCELLED
        assert job.steps[-1].started_at is None
        assert not (await bot.say("cancel 999")).ok


async def test_refusals_are_audited(vcsim_factory: VcsimFactory, tmp_path: Path) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        denied = await bot.say("patch esx-usb-01 to 7.0 U2c", as_user=VIEWER)
        assert not denied.ok and "operator" in denied.summary
        unknown = await bot.say("shutdown esx-nope-09")
        assert not unknown.ok and "no host `esx-nope-09`" in unknown.summary
        preview = await bot.say("reboot esx-usb-01")
        other = await bot.say(f"yes {token(preview)}", as_user=OLGA)
        assert not other.ok and "Only console:otto" in other.summary
        bot.clock.advance(301)
        expired = await bot.say(f"yes {token(preview)}")
        assert not expired.ok and "expired" in expired.summary
        preview = await bot.say("maintenance enter esx-usb-01")
        first = await bot.say(f"yes {token(preview)}")
        assert first.ok
        await bot.runner.wait(first.data["job"])
        replay = await bot.say(f"yes {token(preview)}")
        assert not replay.ok and "already accepted" in replay.summary
        dry = await bot.say("patch esx-usb-01 to 7.0 U2c --dry-run")
        assert (
            not dry.ok
            and dry.data.get("dry_run")
            and not any(b.__class__.__name__ == "Confirm" for b in dry.blocks)
        )
        bootbank = await bot.say("patch esx-bootbank-03 to 7.0 U3v")
        assert not bootbank.ok and "lost its bootbank" in " ".join(str(b) for b in bootbank.blocks)
        audit = await bot.audit()
        assert (VIEWER, "patch", "denied") in audit
        assert (OPERATOR, "shutdown", "bad-arguments") in audit
        assert (OLGA, "yes", "failed") in audit
        assert [o for u, c, o in audit if c == "yes" and u == OPERATOR].count("failed") == 2
        assert len(await bot.runner.repo.listing()) == 1


async def test_job_steps_log_under_the_confirming_commands_correlation_id(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    # a copy at emit time: a root handler left by another test stamps the same record afterwards
    handler.emit = lambda record: records.append(copy.copy(record))  # type: ignore[method-assign]
    async with lab_bot(lab, tmp_path) as bot:
        handler.addFilter(CorrelationFilter(bot.app.correlation))
        logger = logging.getLogger("bot")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            where = Conversation("console", "ops")
            preview = await bot.app.handle(
                Command(User(OPERATOR), where, "maintenance enter DC0_C1_H3 --vm-action power-off")
            )
            started = await bot.app.handle(Command(User(OPERATOR), where, f"yes {token(preview)}"))
            job = await bot.runner.wait(started.data["job"])
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert job.state is JobState.SUCCEEDED, job.result
    yes_line = next(r for r in records if r.getMessage().startswith("command yes "))
    steps = [r for r in records if r.getMessage().startswith(f"job #{job.id} ")]
    outcomes = [r.getMessage().split(": ")[1] for r in steps]
    assert outcomes == ["step-ok"] * len(job.steps) + ["succeeded"], outcomes
    assert {r.correlation_id for r in steps} == {yes_line.correlation_id}  # type: ignore[attr-defined]
    assert yes_line.correlation_id != "-"  # type: ignore[attr-defined]
