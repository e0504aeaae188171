"""The dispatcher end to end over the demo inventory: permissions, confirmations, audit, errors."""

from __future__ import annotations

from typing import Annotated

import pytest

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.selectors import HostArg
from bot.command.spec import CommandError, command
from bot.messages import Confirm, Reply
from bot.model import Host
from handlers import ALL
from tests.fixtures.bot import ADMIN, OPERATOR, VIEWER, MakeBot, TestBot

RAN: list[tuple[str, str, str | None]] = []


async def _preview(ctx: Context, host: Host, *, force: bool = False) -> Reply:
    return Reply.text(f"Will power-cycle {host.name}{' (forced)' if force else ''}.")


@command("powercycle", help="test command", role=Role.OPERATOR, confirm=True, preview=_preview)
async def powercycle(ctx: Context, host: Annotated[Host, HostArg()], *, force: bool = False) -> Reply:
    RAN.append((host.name, ctx.user.id, ctx.confirmed_by.id if ctx.confirmed_by else None))
    return Reply.text(f"power-cycled {host.name}")


@command("boom", help="test command that crashes", role=Role.VIEWER)
async def boom(ctx: Context) -> Reply:
    raise RuntimeError("kaboom")


@command("nope", help="test command that refuses", role=Role.VIEWER)
async def nope(ctx: Context) -> Reply:
    raise CommandError("vCenter is not configured")


SPECS = (*ALL, powercycle, boom, nope)


@pytest.fixture
async def tbot(make_bot: MakeBot) -> TestBot:
    RAN.clear()
    return await make_bot(specs=SPECS)


async def _outcomes(bot: TestBot) -> list[tuple[str, str | None, str]]:
    entries = await bot.app.services.store.audit.recent(50)
    return [(e.user_id, e.command, e.outcome) for e in reversed(entries)]


def _token(reply: Reply) -> str:
    confirms = [b for b in reply.blocks if isinstance(b, Confirm)]
    assert len(confirms) == 1, reply
    return confirms[0].token


async def test_unknown_command_suggests_closest(tbot: TestBot) -> None:
    reply = await tbot.say("chek esx01")
    assert not reply.ok
    assert "Did you mean `check`?" in reply.summary and "help" in reply.summary
    reply = await tbot.say("reformat esx01")
    assert not reply.ok and "Unknown command `reformat`" in reply.summary
    assert await _outcomes(tbot) == [(OPERATOR, None, "unknown-command")] * 2


async def test_host_names_are_validated_with_suggestion(tbot: TestBot) -> None:
    reply = await tbot.say("check esx10")
    assert not reply.ok and "no host or cluster `esx10`" in reply.summary and "Did you mean" in reply.summary
    reply = await tbot.say("check homelab")
    assert reply.ok and reply.data["kind"] == "cluster" and len(reply.data["hosts"]) == 4


async def test_viewer_is_refused_and_refusal_is_audited(tbot: TestBot) -> None:
    reply = await tbot.say("powercycle esx01", as_user=VIEWER)
    assert not reply.ok and "needs the operator role; you have viewer" in reply.summary
    reply = await tbot.say("audit", as_user=OPERATOR)
    assert not reply.ok and "admin" in reply.summary
    assert RAN == []
    assert await _outcomes(tbot) == [(VIEWER, "powercycle", "denied"), (OPERATOR, "audit", "denied")]


async def test_no_policy_means_read_only(make_bot: MakeBot) -> None:
    bot = await make_bot(roles={}, specs=SPECS, demo=False, inventory_file="")
    assert (await bot.say("hosts", as_user="slack:U999")).ok
    assert not (await bot.say("powercycle esx01", as_user="slack:U999")).ok
    help_reply = await bot.say("help", as_user="slack:U999")
    assert "powercycle" not in help_reply.data["commands"] and "audit" not in help_reply.data["commands"]


async def test_confirmation_runs_once_for_the_same_user(tbot: TestBot) -> None:
    preview = await tbot.say("powercycle esx01 --force")
    assert preview.ok and "Will power-cycle esx01.lab.local (forced)" in preview.summary
    token = _token(preview)
    assert RAN == []
    done = await tbot.say(f"yes {token}")
    assert done.ok and done.summary == "power-cycled esx01.lab.local"
    assert RAN == [("esx01.lab.local", OPERATOR, OPERATOR)]
    replay = await tbot.say(f"yes {token}")
    assert not replay.ok and "already accepted" in replay.summary
    assert len(RAN) == 1
    outcomes = await _outcomes(tbot)
    assert (OPERATOR, "powercycle", "confirm-pending") in outcomes
    assert (OPERATOR, "powercycle", "confirmed") in outcomes
    assert outcomes[-1] == (OPERATOR, "yes", "failed")


async def test_confirmation_by_wrong_user_expired_or_declined(tbot: TestBot) -> None:
    token = _token(await tbot.say("powercycle esx01"))
    wrong = await tbot.say(f"yes {token}", as_user="console:olga")
    assert not wrong.ok and "Only console:otto can confirm" in wrong.summary
    elsewhere = await tbot.say(f"yes {token}", room="other-room")
    assert not elsewhere.ok and "No pending confirmation" in elsewhere.summary
    tbot.clock.advance(301)
    late = await tbot.say(f"yes {token}")
    assert not late.ok and "expired" in late.summary
    token2 = _token(await tbot.say("powercycle esx02"))
    assert (await tbot.say(f"no {token2}")).ok
    assert not (await tbot.say(f"yes {token2}")).ok
    assert not (await tbot.say("yes nosuchtoken")).ok
    assert RAN == []


async def test_two_person_rule(make_bot: MakeBot) -> None:
    from bot.config import AuthSettings
    from tests.fixtures.bot import ROLES

    bot = await make_bot(specs=SPECS, auth=AuthSettings(roles=ROLES, two_person=True))
    token = _token(await bot.say("powercycle esx01"))
    self_confirm = await bot.say(f"yes {token}")
    assert not self_confirm.ok and "second operator" in self_confirm.summary
    viewer = await bot.say(f"yes {token}", as_user=VIEWER)
    assert not viewer.ok and "operator role" in viewer.summary
    ok = await bot.say(f"yes {token}", as_user="console:olga")
    assert ok.ok and RAN == [("esx01.lab.local", OPERATOR, "console:olga")]


async def test_internal_errors_become_a_reference(tbot: TestBot, caplog: pytest.LogCaptureFixture) -> None:
    reply = await tbot.say("boom")
    assert not reply.ok and reply.summary.startswith("Internal error (ref ")
    ref = reply.summary.split("ref ", 1)[1].split(")", 1)[0]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)
    refused = await tbot.say("nope")
    assert not refused.ok and refused.summary == "vCenter is not configured"
    assert (await _outcomes(tbot))[-2:] == [(OPERATOR, None, "error"), (OPERATOR, "nope", "failed")]


async def test_help_lists_by_role_and_shows_usage(tbot: TestBot) -> None:
    viewer = await tbot.say("help", as_user=VIEWER)
    admin = await tbot.say("help", as_user=ADMIN)
    assert "audit" not in viewer.data["commands"] and "audit" in admin.data["commands"]
    usage = await tbot.say("help powercycle")
    assert usage.data["usage"] == "powercycle <host> [--force]"
    assert not (await tbot.say("help audit", as_user=VIEWER)).ok


async def test_audit_lists_recent_entries_for_admin(tbot: TestBot) -> None:
    await tbot.say("hosts usb", as_user=VIEWER)
    reply = await tbot.say("audit 5", as_user=ADMIN)
    assert reply.ok
    assert reply.data["entries"][0]["text"] == "hosts usb"
    assert reply.data["entries"][0]["outcome"] == "ok"
