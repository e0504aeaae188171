"""A real ``esxbot run`` whose Slack Socket Mode connection goes silently dead: ``/readyz`` turns unready
within 30 s, the adapter notices by ping/pong, reconnects, ``/readyz`` is ready again, and ``/metrics``
(parsed by prometheus_client) counts the chat reconnect."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.esxbot_lab import EsxbotProcess, SlackGateway, until
from tests.fixtures.postgres import free_port
from tests.slack_fake import SlackFake

OPS = "C0OPS0001"


@pytest.fixture
async def gateway(slack_fake: SlackFake) -> AsyncIterator[SlackGateway]:
    gw = await SlackGateway(slack_fake, "solo").start()
    yield gw
    await gw.stop()


def reconnects(text: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return sum(
        s.value
        for s in families["esxbot_reconnects"].samples
        if s.name == "esxbot_reconnects_total" and s.labels == {"kind": "chat", "name": "slack"}
    )


@pytest.mark.slow  # ~24 s: the SDK pings every 10 s and aiohttp waits 5 s for the pong
async def test_silently_cut_socket_turns_unready_then_ready_after_reconnect(
    slack_fake: SlackFake, gateway: SlackGateway, tmp_path: Path
) -> None:
    config = tmp_path / "esxbot.yaml"
    config.write_text(yaml.safe_dump({"log_level": "INFO"}))
    web_port = free_port()
    bot = EsxbotProcess(
        "solo",
        config,
        {
            "ESXBOT_DATABASE_URL": str(tmp_path / "esxbot.db"),
            "ESXBOT_SLACK_BOT_TOKEN": slack_fake.workspace.bot_token,
            "ESXBOT_SLACK_APP_TOKEN": slack_fake.workspace.app_token,
            "ESXBOT_SLACK_SIGNING_SECRET": slack_fake.signing_secret,
            "ESXBOT_SLACK_BASE_URL": gateway.base_url,
            "ESXBOT_WEB_PORT": str(web_port),
        },
        web_port,
        tmp_path / "solo.log",
    )
    await bot.start()
    try:

        async def ready() -> bool:
            answer = await bot.readyz()
            return answer is not None and answer[0] == 200

        seen_unready: list[dict[str, Any]] = []

        async def unready() -> bool:
            answer = await bot.readyz()
            if answer is not None and answer[0] == 503:
                seen_unready.append(answer[1])
            return bool(seen_unready)

        await until(ready, 20)
        assert slack_fake.open_connections == 1
        before = reconnects(await bot.metrics())

        assert gateway.proxy.cut() == 1
        cut_at = time.monotonic()
        await until(unready, 30, every=0.1)
        to_unready = time.monotonic() - cut_at
        failing = [c["name"] for c in seen_unready[0]["checks"] if not c["ok"]]
        assert failing == ["chat:slack"]
        await until(ready, 30, every=0.1)
        to_ready = time.monotonic() - cut_at
        assert gateway.proxy.accepted == 2  # the reconnect went through a new connection
        assert len(gateway.posts("apps.connections.open")) == 2
        # the old connection is dead but the fake never heard: an event sent there is not acked and
        # is redelivered (as Slack does) until it reaches the new connection, which answers it
        await slack_fake.mention("help")
        await slack_fake.wait_for(lambda: len(slack_fake.bot_messages(OPS)) == 1, timeout=15)
        after = reconnects(await bot.metrics())
        print(f"cut → unready {to_unready:.1f}s, → ready {to_ready:.1f}s; reconnects {before} → {after}")
        assert to_unready < 30
        assert after == before + 1
    except BaseException:
        print(bot.tail(80))
        raise
    finally:
        await bot.stop()
