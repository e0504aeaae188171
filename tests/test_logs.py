"""Structured logs: secrets never printed (logs, tracebacks, repr of settings), correlation ids per task."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.config import MatrixSettings, Secret, Settings, SlackSettings, VCenterSettings, load_settings
from bot.messages import Command, Conversation, Reply, User
from bot.runtime.logconfig import Correlation, Redactor, configure, secret_values
from handlers import ALL as ALL_SPECS
from tests.fixtures.bot import OPERATOR, MakeBot

BOT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
APP = "xapp-1-A0123456789-1234567890123-abcdef0123456789"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
MATRIX = "syt_ZXN4Ym90_QWxpY2VJc0hlcmU_0aBcDe"
VC_PASSWORD = "VMware1!-not-in-logs"
MX_PASSWORD = "hunter2-correct-horse"


def settings() -> Settings:
    return Settings(
        slack=SlackSettings(bot_token=Secret(BOT), app_token=Secret(APP), signing_secret=Secret(SIGNING)),
        matrix=MatrixSettings(
            homeserver="https://hs",
            user_id="@bot:hs",
            password=Secret(MX_PASSWORD),
            access_token=Secret(MATRIX),
        ),
        vcenters=(VCenterSettings(name="vc1", host="vc1.lab", user="admin", password=Secret(VC_PASSWORD)),),
    )


ALL = (BOT, APP, SIGNING, MATRIX, VC_PASSWORD, MX_PASSWORD)


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_repr_of_settings_shows_no_secret() -> None:
    text = repr(settings()) + str(settings())
    assert not [s for s in ALL if s in text]
    assert "Secret('***')" in text


def test_settings_loaded_from_env_keep_secrets_out_of_repr() -> None:
    loaded = load_settings(
        env={"ESXBOT_SLACK_BOT_TOKEN": BOT, "ESXBOT_MATRIX_PASSWORD": MX_PASSWORD}, dotenv=None
    )
    assert loaded.slack.bot_token.reveal() == BOT
    assert BOT not in repr(loaded) and MX_PASSWORD not in repr(loaded)


def test_no_secret_reaches_the_log_output(root_restored: None) -> None:
    out = io.StringIO()
    configure(redactor=Redactor(secret_values(settings())), stream=out, level="DEBUG")
    log = logging.getLogger("bot.test")
    log.info("slack connect with %s and %s", BOT, APP)
    log.warning("matrix login as @bot:hs password=%s token: %s", MX_PASSWORD, MATRIX)
    log.info("headers: {'Authorization': 'Bearer %s'}", "abc.def-ghi")
    log.info("database postgresql://esxbot:s3cr3t-pw@db:5432/esxbot unreachable")
    log.info('payload {"password": "%s", "user": "admin"}', VC_PASSWORD)
    log.info("signing secret is %s", SIGNING)
    log.info("an unregistered token xoxp-9999-8888-7777-abcdef and syt_other_token_1234")
    try:
        raise ConnectionError(f"login failed for admin:{VC_PASSWORD} at vc1.lab")
    except ConnectionError:
        log.exception("vCenter vc1 session lost")
    text = out.getvalue()
    assert not [s for s in (*ALL, "abc.def-ghi", "s3cr3t-pw", "xoxp-9999") if s in text], text
    assert "syt_other" not in text
    assert "postgresql://esxbot:***@db:5432/esxbot" in text
    assert "ConnectionError: login failed for admin:***" in text
    assert text.count("\n") >= 9


def test_redactor_leaves_ordinary_text_alone() -> None:
    redactor = Redactor(["ab", "longer-secret"])
    assert redactor.redact("check esx01 ab cluster") == "check esx01 ab cluster"
    assert redactor.redact("x longer-secret y") == "x *** y"


async def test_json_lines_carry_the_correlation_id_of_their_task(root_restored: None) -> None:
    out = io.StringIO()
    correlation = Correlation()
    configure(json_lines=True, correlation=correlation, stream=out)
    log = logging.getLogger("bot.command.dispatcher")

    async def command(n: int) -> str:
        with correlation.scope("cmd") as cid:
            log.info("start %d", n)
            await asyncio.sleep(0.01)
            log.info("done %d token=%s", n, BOT)
            return cid

    ids = await asyncio.gather(command(1), command(2))
    with correlation.scope("job", "patch-42"):
        log.info("step 1")
    log.info("outside")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_id: dict[str, list[str]] = {}
    for line in lines:
        by_id.setdefault(line.get("correlation_id", "-"), []).append(line["message"])
    assert by_id[ids[0]] == ["start 1", "done 1 token=***"]
    assert by_id[ids[1]] == ["start 2", "done 2 token=***"]
    assert by_id["job-patch-42"] == ["step 1"]
    assert by_id["-"] == ["outside"]
    assert ids[0] != ids[1] and all(i.startswith("cmd-") for i in ids)
    assert {line["level"] for line in lines} == {"INFO"} and lines[0]["logger"] == "bot.command.dispatcher"


@command("explode", help="A command that fails inside (tests)", role=Role.VIEWER)
async def explode(ctx: Context) -> Reply:
    raise RuntimeError("boom")


async def test_every_command_logs_one_line_and_an_internal_error_names_its_log_id(
    root_restored: None, make_bot: MakeBot
) -> None:
    out = io.StringIO()
    bot = await make_bot(specs=(*ALL_SPECS, explode))
    configure(json_lines=True, correlation=bot.app.correlation, stream=out)
    where = Conversation("matrix", "!ops:hs")
    for text in ("check esx01", "explode", "frobnicate"):
        await bot.app.handle(Command(User(OPERATOR), where, text, sent_at=bot.clock.now()))
    failed = await bot.app.handle(Command(User(OPERATOR), where, "explode", sent_at=bot.clock.now()))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    done = [line for line in lines if line["message"].startswith("command ")]
    assert [line["message"].split(" (")[0] for line in done] == [
        f"command check by {OPERATOR} in matrix:!ops:hs: ok",
        f"command explode by {OPERATOR} in matrix:!ops:hs: error",
        f"command frobnicate by {OPERATOR} in matrix:!ops:hs: unknown-command",
        f"command explode by {OPERATOR} in matrix:!ops:hs: error",
    ]
    assert all(line["correlation_id"].startswith("cmd-") for line in done)
    ref = failed.summary.split("(ref ")[1].split(")")[0]
    error = [line for line in lines if line["level"] == "ERROR"][-1]
    assert error["correlation_id"] == f"cmd-{ref}" and "RuntimeError: boom" in error["exception"]
