"""A confirmation runs the plan its preview showed, against vcsimlab: a release that appears between
preview and ``yes`` is not installed instead, and a host that changed refuses the confirmation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.selectors import HostArg
from bot.command.spec import command
from bot.messages import Reply
from bot.model import Host, JobState, Release
from handlers import ALL
from tests.fixtures.bot import MakeBot
from tests.fixtures.vcsim import VcsimFactory
from tests.jobs_lab import lab_bot, token

USB = "esx-usb-01.lab.local"
WORLD: dict[str, str] = {}  # host → cluster, as the "cycle" command's planner sees it
RAN: list[Mapping[str, Any] | None] = []


def _facts(host: Host) -> dict[str, Any]:
    return {"hosts": {host.name: {"cluster": WORLD.get(host.name, host.cluster)}}, "steps": ["cycle"]}


async def _cycle_preview(ctx: Context, host: Host) -> Reply:
    return Reply(summary=f"Will cycle {host.name}.", data={"plan": _facts(host)})


@command("cycle", help="test command", role=Role.OPERATOR, confirm=True, preview=_cycle_preview)
async def cycle(ctx: Context, host: Annotated[Host, HostArg()]) -> Reply:
    RAN.append(ctx.approved)
    return Reply.text(f"cycled {host.name}")


async def test_yes_runs_the_stored_plan_or_refuses_with_what_changed(make_bot: MakeBot) -> None:
    WORLD.clear()
    RAN.clear()
    bot = await make_bot(specs=(*ALL, cycle))
    shown = await bot.say("cycle esx01")
    assert (await bot.say(f"yes {token(shown)}")).ok
    assert RAN == [{"hosts": {"esx01.lab.local": {"cluster": "homelab"}}, "steps": ["cycle"]}]

    shown = await bot.say("cycle esx01")
    WORLD["esx01.lab.local"] = "prod-c2"  # moved to another cluster between preview and yes
    refused = await bot.say(f"yes {token(shown)}")
    assert not refused.ok and len(RAN) == 1
    assert refused.summary.startswith("Refused, nothing was done: the plan changed since the preview: ")
    assert "hosts.esx01.lab.local.cluster: homelab → prod-c2" in refused.summary
    assert (await bot.say(f"yes {token(shown)}")).summary.endswith("it works once.")


async def test_a_release_added_after_the_preview_is_not_what_runs(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        preview = await bot.say("patch esx-usb-01")  # no `to`: the newest release of the host's line
        assert preview.ok, preview.summary
        shown = preview.data["plan"]["options"]["target_build"]
        newer = Release(
            line="7.0", name="ESXi 7.0 Update 9z", build=shown + 1000, version="7.0.3",
            release_date=dt.date(2099, 1, 1),
        )  # fmt: skip
        assert bot.app.services.catalog.add(newer) is not None
        assert (await bot.say("patch esx-usb-01 --dry-run")).data["plan"]["options"][
            "target_build"
        ] == newer.build
        started = await bot.say(f"yes {token(preview)}")
        assert started.ok, started.summary
        job = await bot.runner.wait(started.data["job"])
        assert job.state is JobState.SUCCEEDED, job.result
        assert lab.hosts()[USB]["build"] == str(shown)


async def test_a_host_that_changed_since_the_preview_refuses_the_confirmation(
    vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    lab = vcsim_factory()
    async with lab_bot(lab, tmp_path) as bot:
        preview = await bot.say("patch esx-usb-01 to 7.0 U2c")
        assert preview.ok, preview.summary
        lab.hook("connection", host=USB, state="notResponding")
        await bot.vc.refresh()
        refused = await bot.say(f"yes {token(preview)}")
        assert not refused.ok
        assert refused.summary.startswith("Refused, nothing was done")
        assert "Pre-checks failed" in refused.summary and "connected" in refused.summary
        assert await bot.runner.repo.lock_holder(USB) is None
        assert lab.hosts()[USB]["build"] != "18426014"
