"""Two real ``esxbot run`` processes on one PostgreSQL, both on one Slack fake over Socket Mode.

Only the leader listens for syslog and pages; both answer commands. The leader is killed (SIGKILL)
while a page is in flight (Slack accepted the post, the answer never reached the bot) and another is
queued: the follower becomes leader, delivers both, takes over the syslog port, and pages a new alert.
The test asserts the exact multiset of ``chat.postMessage``/``chat.update`` calls Slack recorded: the
only duplicate is the in-flight post (Slack has no idempotency key; the outbox resends what it could
not mark sent, a duplicate rather than a loss).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.store.outbox_records import OutboxRepo
from bot.store.sql.connect import open_database
from tests.esxbot_lab import EsxbotProcess, Relayed, SlackGateway, until
from tests.fixtures.postgres import free_port
from tests.slack_fake import SlackFake
from tests.slack_fake.web_api import Channel

OPS, PAGES = "C0OPS0001", "C0PAGE001"
BOOT = {"kind": "usb", "device": "mpx.vmhba32:C0:T0:L0", "adapter": "vmhba32", "driver": "vmkusb"}
IN_DOUBT = (
    "<166>1 2024-03-02T10:15:00.118Z {host} vmkwarning - - - cpu4:2097301)WARNING: NMP: "
    'nmp_DeviceRequestFastDeviceProbe:237: NMP device "mpx.vmhba32:C0:T0:L0" state in doubt; '
    "requested fast path state update..."
)
LOSS = (
    "<14>1 2024-03-02T10:15:04.000Z {host} hostd 2099480 - - Event 412 : Issue detected on {host} "
    "in ha-datacenter: Bootbank cannot be found at path '/bootbank'"
)


def label(text: str) -> str:
    """What a bot message is, in a word or three."""
    if "will hear about" in text:
        return "subscribed"
    for marker, kind in (("shows trouble", "precursor"), ("lost its bootbank", "loss")):
        if marker in text:
            host = next(h for h in ("esx-usb-01", "esx-usb-02") if h in text)
            return f"{kind} {host}"
    return f"other: {text[:60]}"


def pages(calls: list[Relayed]) -> list[tuple[str, str]]:
    return [
        (c.args["channel"], label(c.args.get("text", ""))) for c in calls if c.method == "chat.postMessage"
    ]


def leader_gauge(metrics: str) -> float:
    (family,) = [f for f in text_string_to_metric_families(metrics) if f.name == "esxbot_leader"]
    return float(family.samples[0].value)


@pytest.fixture
async def gateways(slack_fake: SlackFake) -> AsyncIterator[dict[str, SlackGateway]]:
    slack_fake.workspace.channels[PAGES] = Channel(id=PAGES, name="pages")
    gws = {name: await SlackGateway(slack_fake, name).start() for name in ("a", "b")}
    yield gws
    for gw in gws.values():
        await gw.stop()


async def syslog_until(port: int, line: str, done: object, timeout: float) -> float:
    """Send ``line`` over UDP every 0.5 s until ``done()``: only the leader listens, lines may be lost."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

        def send_and_check() -> bool:
            if done():  # type: ignore[operator]
                return True
            sock.sendto(line.encode(), ("127.0.0.1", port))
            return False

        return await until(send_and_check, timeout, every=0.5)


async def test_kill_the_leader_mid_delivery_and_the_follower_pages_everything_once(
    slack_fake: SlackFake, gateways: dict[str, SlackGateway], pg_url: str, tmp_path: Path
) -> None:
    syslog_port = free_port()
    (tmp_path / "inventory.yaml").write_text(
        yaml.safe_dump(
            {
                "hosts": [  # two clusters: each host's alert is its own group, its own page
                    {"name": n, "build": 17867351, "boot_device": BOOT, "cluster": c}
                    for n, c in (("esx-usb-01", "c1"), ("esx-usb-02", "c2"))
                ]
            }
        )
    )
    config = tmp_path / "esxbot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "inventory_file": "inventory.yaml",
                "auth": {"roles": {"slack:U0ANN0001": "operator"}},
                "alerts": {"for": 1, "group_wait": 0},
                # the test sends for both hosts from 127.0.0.1: it plays a log collector
                "syslog": {
                    "bind": "127.0.0.1",
                    "udp_port": syslog_port,
                    "tcp_port": None,
                    "trusted_relays": ["127.0.0.1"],
                },
            }
        )
    )
    bots = {}
    for name, gw in gateways.items():
        port = free_port()
        env = {
            "ESXBOT_DATABASE_URL": pg_url,
            "ESXBOT_SLACK_BOT_TOKEN": slack_fake.workspace.bot_token,
            "ESXBOT_SLACK_APP_TOKEN": slack_fake.workspace.app_token,
            "ESXBOT_SLACK_SIGNING_SECRET": slack_fake.signing_secret,
            "ESXBOT_SLACK_BASE_URL": gw.base_url,
            "ESXBOT_WEB_PORT": str(port),
            "ESXBOT_INSTANCE": name,
        }
        bots[name] = EsxbotProcess(name, config, env, port, tmp_path / f"{name}.log")
    db = await open_database(pg_url)
    try:
        await asyncio.gather(*(bot.start() for bot in bots.values()))

        async def all_ready() -> bool:
            answers = [await bot.readyz() for bot in bots.values()]
            return all(a is not None and a[0] == 200 for a in answers)

        await until(all_ready, 30)
        await slack_fake.wait_for(lambda: slack_fake.open_connections == 2)
        roles = {name: await bot.role() for name, bot in bots.items()}
        assert sorted(str(r) for r in roles.values()) == ["follower", "leader"]
        leader = next(n for n, r in roles.items() if r == "leader")
        follower = next(n for n, r in roles.items() if r == "follower")
        lgw, fgw = gateways[leader], gateways[follower]

        # both instances answer commands (Slack spreads envelopes over the two connections)
        for room in (OPS, PAGES):
            await slack_fake.slash("subscribe alerts", channel=room)
        await until(lambda: len(pages(lgw.calls) + pages(fgw.calls)) == 2, 10)
        assert sorted(pages(lgw.calls) + pages(fgw.calls)) == [(OPS, "subscribed"), (PAGES, "subscribed")]
        assert len(pages(lgw.calls)) == len(pages(fgw.calls)) == 1

        # phase A: a precursor alert, paged by the leader only
        def precursor_paged() -> bool:
            return sum(p[1] == "precursor esx-usb-01" for p in pages(lgw.calls)) == 2

        await syslog_until(syslog_port, IN_DOUBT.format(host="esx-usb-01"), precursor_paged, 15)

        # phase B: Slack takes the leader's next post but its answer never arrives; more is queued
        lgw.withhold.add("chat.postMessage")
        await syslog_until(
            syslog_port, LOSS.format(host="esx-usb-01"), lambda: any(c.ok is None for c in lgw.calls), 15
        )

        async def queued_behind_the_withheld_post() -> bool:
            return (await OutboxRepo(db).stats(time.time()))[0] == 2

        await until(queued_behind_the_withheld_post, 10)
        (in_flight,) = [c for c in lgw.calls if c.ok is None]
        assert label(in_flight.args["text"]) == "loss esx-usb-01"
        assert [p for p in pages(fgw.calls) if p[1] != "subscribed"] == []  # the follower never pages
        assert (await OutboxRepo(db).stats(time.time()))[0] == 2  # the in-flight page and the other room's

        listening = "syslog receiver listening"
        assert listening in bots[leader].log.read_text() and listening not in bots[follower].log.read_text()
        assert [leader_gauge(await bots[n].metrics()) for n in (leader, follower)] == [1.0, 0.0]

        # kill -9 the leader: the follower takes over and delivers what was left
        await bots[leader].kill()
        killed = time.monotonic()

        async def took_over() -> bool:
            return await bots[follower].role() == "leader"

        await until(took_over, 15, every=0.1)
        takeover = time.monotonic() - killed

        async def drained() -> bool:
            return (await OutboxRepo(db).stats(time.time()))[0] == 0

        await until(drained, 10)

        # phase C: the new leader listens on the syslog port and pages a new alert
        def second_paged() -> bool:
            return sum(p[1] == "precursor esx-usb-02" for p in pages(fgw.calls)) == 2

        await syslog_until(syslog_port, IN_DOUBT.format(host="esx-usb-02"), second_paged, 15)
        status = await bots[follower].readyz()
        assert status is not None and status[0] == 200 and status[1]["role"] == "leader"
        await until(drained, 10)  # every queued page delivered once: nothing else is left to arrive

        posted = Counter(
            (c.args["channel"], label(c.args.get("text", "")))
            for c in slack_fake.calls_to("chat.postMessage")
            if c.status == 200 and c.response.get("ok")
        )
        in_flight_room = in_flight.args["channel"]
        other_room = PAGES if in_flight_room == OPS else OPS
        expected = Counter(
            {
                (OPS, "subscribed"): 1, (PAGES, "subscribed"): 1,
                (OPS, "precursor esx-usb-01"): 1, (PAGES, "precursor esx-usb-01"): 1,
                (in_flight_room, "loss esx-usb-01"): 2,  # the in-flight post, resent by the new leader
                (other_room, "loss esx-usb-01"): 1,
                (OPS, "precursor esx-usb-02"): 1, (PAGES, "precursor esx-usb-02"): 1,
            }
        )  # fmt: skip
        assert posted == expected
        assert slack_fake.calls_to("chat.update") == []
        duplicates = sum(n - 1 for n in posted.values() if n > 1)
        assert duplicates == 1  # exactly the one post in flight at the kill
        new_leader_pages = Counter(p for p in pages(fgw.calls) if p[1] != "subscribed")
        assert new_leader_pages == Counter(
            {
                (in_flight_room, "loss esx-usb-01"): 1, (other_room, "loss esx-usb-01"): 1,
                (OPS, "precursor esx-usb-02"): 1, (PAGES, "precursor esx-usb-02"): 1,
            }
        )  # fmt: skip
        print(f"takeover {takeover:.1f}s after kill -9; {duplicates} duplicate (in flight)")
        assert takeover < 15
    except BaseException:
        for bot in bots.values():
            print(bot.tail(60))
        raise
    finally:
        await asyncio.gather(*(bot.stop() for bot in bots.values()))
        await db.close()
