"""The alert commands through the real dispatcher (roles, parsing, audit) with an engine on a fake clock."""

from __future__ import annotations

from dataclasses import replace

from bot.alerts.engine import AlertEngine
from bot.alerts.intake import EngineConfig, Signal
from bot.alerts.oncall import parse_oncall
from bot.chat.outbox import Outbox
from bot.inventory.merged import find_host
from bot.model import AlertState
from bot.store.outbox_records import OutboxRepo
from handlers import ALL
from tests.alert_harness import ONCALL
from tests.fixtures.bot import ADMIN, OPERATOR, VIEWER, MakeBot, TestBot

HOST = "esx01.lab.local"


async def alert_bot(make_bot: MakeBot) -> tuple[TestBot, AlertEngine]:
    bot = await make_bot(specs=ALL)
    services = bot.app.services
    engine = AlertEngine(
        bot.app.db,
        Outbox(OutboxRepo(bot.app.db), services.store.subscriptions, bot.clock),
        bot.clock,
        hosts=lambda name: find_host(services.inventory.hosts(), name),
        policy=parse_oncall(ONCALL),
        config=EngineConfig(),
    )
    bot.app.dispatcher.services = replace(services, alerts=engine)
    return bot, engine


async def test_alerts_ack_and_resolve(make_bot: MakeBot) -> None:
    bot, engine = await alert_bot(make_bot)
    assert (await bot.say("alerts", as_user=VIEWER)).summary == "No open alerts."
    rec = await engine.ingest(Signal(HOST, "bootbank-loss", source="test"))
    assert rec is not None
    bot.clock.advance(30)
    await engine.tick()
    listing = await bot.say("alerts", as_user=VIEWER)
    assert listing.data["alerts"][0]["state"] == "firing" and listing.data["alerts"][0]["host"] == HOST
    denied = await bot.say(f"ack {rec.id}", as_user=VIEWER)
    assert not denied.ok and "operator" in denied.summary
    acked = await bot.say(f"ack #{rec.id}", as_user=OPERATOR)
    assert acked.ok and "acknowledged" in acked.summary
    assert not (await bot.say("ack 999", as_user=OPERATOR)).ok
    assert not (await bot.say("ack banana", as_user=OPERATOR)).ok
    done = await bot.say(f"resolve {rec.id}", as_user=ADMIN)
    assert done.ok
    state = await engine.alerts.get(rec.id)
    assert state is not None and state.state is AlertState.RESOLVED and state.resolved_by == ADMIN
    assert not (await bot.say(f"resolve {rec.id}", as_user=ADMIN)).ok
    audit = await bot.app.db.fetchall("SELECT command, outcome FROM audit WHERE command = 'resolve'")
    assert [r["outcome"] for r in audit] == ["ok", "failed"]
    assert (await bot.say("alerts all", as_user=VIEWER)).data["alerts"][0]["resolved_by"] == ADMIN


async def test_silence_and_unsilence(make_bot: MakeBot) -> None:
    bot, engine = await alert_bot(make_bot)
    reply = await bot.say("silence esx01 2h swapping the USB stick", as_user=OPERATOR)
    assert reply.ok and reply.data["silence"]["matchers"] == {"host": [HOST]}
    assert reply.data["silence"]["reason"] == "swapping the USB stick"
    assert not (await bot.say("silence nohost 2h", as_user=OPERATOR)).ok
    assert not (await bot.say("silence esx01 soon", as_user=OPERATOR)).ok
    assert not (await bot.say("silence esx01 40d", as_user=OPERATOR)).ok
    [active] = await engine.silences.active(bot.clock.now())
    assert active.matchers == {"host": (HOST,)}
    assert (await bot.say("unsilence esx01", as_user=OPERATOR)).ok
    assert await engine.silences.active(bot.clock.now()) == []
    assert "no active silence" in (await bot.say("unsilence esx01", as_user=OPERATOR)).summary


async def test_oncall_now_and_next(make_bot: MakeBot) -> None:
    bot, _ = await alert_bot(make_bot)
    now = await bot.say("oncall", as_user=VIEWER)
    assert now.data["person"] == "ann" and "Next level" in str(now.blocks)
    nxt = await bot.say("oncall next", as_user=VIEWER)
    assert nxt.data["person"] == "bob" and nxt.data["start"] == "2021-08-30T07:00:00+00:00"


async def test_a_quiet_fleet_has_no_alerts(make_bot: MakeBot) -> None:
    bot = await make_bot(specs=ALL)
    reply = await bot.say("alerts", as_user=VIEWER)
    assert reply.ok and "No open alerts" in reply.summary


async def _fire(bot: TestBot, engine: AlertEngine, *hosts: str) -> None:
    for host in hosts:
        await engine.ingest(Signal(host, "bootbank-loss", source="test"))
    bot.clock.advance(30)
    await engine.tick()
    await engine.tick()


async def test_matcher_silences_listed_ended_by_id_and_still_shown_in_alerts(make_bot: MakeBot) -> None:
    bot, engine = await alert_bot(make_bot)
    made = await bot.say(
        'silence cluster=prod-c1 kind=bootbank-loss 2h "replacing USB sticks"', as_user=OPERATOR
    )
    assert made.ok and made.data["silence"]["matchers"] == {"cluster": ["prod-c1"], "kind": ["bootbank-loss"]}
    assert made.data["silence"]["reason"] == "replacing USB sticks" and "unsilence 1" in made.summary
    glob = await bot.say("silence host=esx0* 30m", as_user=OPERATOR)
    assert glob.ok and glob.data["silence"]["matchers"] == {"host": ["esx0*"]}
    await _fire(bot, engine, "prod-c1-h01.corp.example", "prod-c2-h01.corp.example", "esx01.lab.local")
    listing = await bot.say("alerts all", as_user=VIEWER)
    by_host = {a["host"]: a for a in listing.data["alerts"]}
    assert "silence #1" in by_host["prod-c1-h01.corp.example"]["muted"]  # silenced, still listed
    assert "silence #2" in by_host["esx01.lab.local"]["muted"]
    assert by_host["prod-c2-h01.corp.example"]["muted"] is None
    assert by_host["prod-c2-h01.corp.example"]["group"] == "g1"
    active = await bot.say("silences", as_user=VIEWER)
    assert [s["id"] for s in active.data["silences"]] == [2, 1]
    assert active.data["silences"][1]["by"] == OPERATOR
    assert (await bot.say("unsilence 1", as_user=OPERATOR)).ok
    assert [s["id"] for s in (await bot.say("silences", as_user=VIEWER)).data["silences"]] == [2]
    assert "No silence #1" in (await bot.say("unsilence 1", as_user=OPERATOR)).summary
    for bad in (
        "silence rack=r1 1h",
        "silence cluster=prod-c1",
        "silence cluster=prod-c1 soon",
        "silence kind= 1h",
    ):
        assert not (await bot.say(bad, as_user=OPERATOR)).ok, bad
    assert not (await bot.say("silence cluster=prod-c1 1h", as_user=VIEWER)).ok


async def test_ack_and_resolve_a_group_by_its_ref(make_bot: MakeBot) -> None:
    bot, engine = await alert_bot(make_bot)
    await _fire(bot, engine, "prod-c1-h01.corp.example", "prod-c1-h02.corp.example")
    acked = await bot.say("ack g1", as_user=OPERATOR)
    assert acked.ok and sorted(acked.data["hosts"]) == [
        "prod-c1-h01.corp.example",
        "prod-c1-h02.corp.example",
    ]
    states = {a["state"] for a in (await bot.say("alerts", as_user=VIEWER)).data["alerts"]}
    assert states == {"acknowledged"}
    assert (await bot.say("resolve g1", as_user=ADMIN)).ok
    assert "No open alerts" in (await bot.say("alerts", as_user=VIEWER)).summary
    assert not (await bot.say("ack g1", as_user=OPERATOR)).ok
    assert not (await bot.say("ack g99", as_user=OPERATOR)).ok


async def test_silence_a_group_by_its_ref(make_bot: MakeBot) -> None:
    bot, engine = await alert_bot(make_bot)
    await _fire(bot, engine, "prod-c1-h01.corp.example", "prod-c1-h02.corp.example")
    made = await bot.say("silence g1 1h swapping sticks", as_user=OPERATOR)
    assert made.ok and made.data["silence"]["matchers"] == {"cluster": ["prod-c1"], "kind": ["bootbank-loss"]}
    assert "mutes 2 open alerts" in made.summary
    assert not (await bot.say("silence g42 1h", as_user=OPERATOR)).ok
    await engine.ingest(Signal("stray-host", "bootbank-loss", source="test"))  # no cluster label
    bot.clock.advance(30)
    await engine.tick()
    await engine.tick()
    stray = await engine.alerts.open_for("stray-host", "bootbank-loss")
    assert stray is not None and stray.group_id is not None
    by_hosts = await bot.say(f"silence g{stray.group_id} 1h", as_user=OPERATOR)
    assert by_hosts.data["silence"]["matchers"] == {"host": ["stray-host"], "kind": ["bootbank-loss"]}
