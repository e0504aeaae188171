"""Bounded fuzz runs (fixed seeds, a few thousand cases, seconds) over every parser of foreign input.

Each run feeds mutated real shapes to the real code and accepts only the documented outcomes: a
value, or the module's own error type. Anything else (a ``TypeError`` deep inside, a hang, a buffer
that keeps growing) fails with the case number, which reproduces with the same seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.actions.bmc import BmcConfig, SecretRef
from bot.actions.redfish import RedfishClient, RedfishError, ResetType
from bot.alerts.framing import Framer
from bot.alerts.log_scan import HostIndex
from bot.alerts.logline import parse_line
from bot.alerts.patterns import load_rules
from bot.alerts.signals import LogSignal
from bot.alerts.syslog import SyslogConfig, SyslogReceiver
from bot.chat.matrix_events import BadEvent, parse_event
from bot.config import ConfigError, load_settings
from bot.inventory.static_file import InventoryError, load_inventory
from bot.model import BootDevice, BootKind, Host
from bot.releases.sources.release_notes import parse_notes
from bot.runtime.sections import read_sections
from bot.store.matrix_inbox import InboxItem
from tests.fixtures.fake_homeserver import ANN, ROOM, fake_homeserver, joined, message, running_adapter
from tests.fuzz import mutate, mutate_bytes

DATA = Path(__file__).parent / "data"
ME = "@esxbot:example.org"

MATRIX_SEEDS: list[dict[str, Any]] = [
    {
        "type": "m.room.message",
        "event_id": "$e1",
        "sender": "@ann:example.org",
        "origin_server_ts": 1_629_806_400_000,
        "content": {"msgtype": "m.text", "body": "!esx check esx-01"},
        "unsigned": {"age": 12},
    },
    {
        "type": "m.room.message",
        "event_id": "$e2",
        "sender": "@ann:example.org",
        "origin_server_ts": 1_629_806_400_000,
        "content": {
            "msgtype": "m.text",
            "body": "!esx hosts",
            "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True},
        },
    },
    {
        "type": "m.reaction",
        "event_id": "$r1",
        "sender": "@ann:example.org",
        "origin_server_ts": 1_629_806_400_000,
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$confirm", "key": "✅"}},
    },
    {
        "type": "m.room.message",
        "event_id": "$e3",
        "sender": "@ann:example.org",
        "origin_server_ts": 1_629_806_400_000,
        "content": {
            "msgtype": "m.text",
            "body": "* !esx help",
            "m.new_content": {"msgtype": "m.text", "body": "!esx help"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$e1"},
        },
    },
]


def test_fuzz_matrix_event_parser() -> None:
    rng = random.Random(12001)
    kept = 0
    for case in range(4000):
        event = mutate(rng.choice(MATRIX_SEEDS), rng)
        direct = rng.random() < 0.3
        try:
            item = parse_event(event, "!room:example.org", me=ME, prefix="!esx", direct=direct)
        except BadEvent:
            continue
        except Exception as exc:
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc} on {str(event)[:300]}")
        if item is not None:
            kept += 1
            assert isinstance(item, InboxItem)
            assert all(isinstance(v, str) for v in (item.event_id, item.sender, item.text, item.reply_to))
            assert item.thread is None or isinstance(item.thread, str)
            assert isinstance(item.sent_at, datetime)
    assert kept > 100  # the mutations leave plenty of valid commands: the parser was really exercised


async def test_fuzz_matrix_sync_batches_through_the_real_adapter(tmp_path: Path) -> None:
    rng = random.Random(12002)
    async with fake_homeserver() as server, running_adapter(server, tmp_path) as adapter:
        for batch in range(3):
            events = [mutate(rng.choice(MATRIX_SEEDS), rng) for _ in range(100)]
            server.script(joined(ROOM, [*events, message(f"$ok{batch}", ANN, f"!esx ping {batch}")]))
            await server.wait_for_body(f"pong ping {batch}")
        assert adapter.health().connected


SYSLOG_SEEDS = [line for line in (DATA / "logs" / "fleet-collector.log").read_bytes().splitlines() if line]
HOSTS = [
    Host(
        name="esx-usb-01.lab.example",
        boot_device=BootDevice(BootKind.USB, "mpx.vmhba32:C0:T0:L0"),
        address="127.0.0.1",
    )
]


async def test_fuzz_syslog_frames_and_lines() -> None:
    rng = random.Random(12003)
    seen: list[LogSignal] = []

    async def sink(signal: LogSignal) -> None:
        seen.append(signal)

    config = SyslogConfig(udp_port=None, tcp_port=None, max_line=2048, trusted_relays=("10.9.0.0/16",))
    receiver = SyslogReceiver(config, load_rules(), HostIndex(HOSTS).resolve, sink)
    framer = Framer(config.max_line)
    for case in range(3000):
        line = mutate_bytes(rng.choice(SYSLOG_SEEDS), rng, others=tuple(SYSLOG_SEEDS[:5]))
        address = rng.choice(["127.0.0.1", "10.9.1.1", "192.0.2.77", "::ffff:127.0.0.1", "not-an-ip"])
        try:
            parse_line(line)
            receiver.handle_line(line, address, "udp")
            stream = (b"%d " % len(line) + line) if rng.random() < 0.5 else line + b"\n"
            cut = rng.randrange(len(stream) + 1)
            for chunk in (stream[:cut], stream[cut:]):
                for frame in framer.feed(chunk):
                    receiver.handle_line(frame, address, "tcp")
                assert framer.buffered <= config.max_line + len(chunk), f"case {case}: framer holds too much"
        except Exception as exc:
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc} on {line[:300]!r}")
    stats = receiver.stats()
    assert stats.received >= 3000 and stats.parsed > 500


REDFISH_SEEDS: dict[str, dict[str, Any]] = {
    "/redfish/v1/": {"Systems": {"@odata.id": "/redfish/v1/Systems"}, "SessionService": {}},
    "/redfish/v1/Systems": {"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]},
    "/redfish/v1/Systems/1": {
        "Id": "1",
        "PowerState": "Off",
        "SerialNumber": "CZ1",
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                "@Redfish.ActionInfo": "/redfish/v1/Systems/1/ResetActionInfo",
            }
        },
    },
    "/redfish/v1/Systems/1/ResetActionInfo": {
        "Parameters": [{"Name": "ResetType", "AllowableValues": ["On", "ForceOff"]}]
    },
}


@contextlib.asynccontextmanager
async def _lying_bmc(rng: random.Random) -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.StreamResponse:
        seed = REDFISH_SEEDS.get(request.path)
        if seed is None:
            return web.json_response({}, status=rng.choice([200, 204, 404, 500]))
        roll = rng.random()
        if roll < 0.1:
            return web.Response(body=mutate_bytes(web.json_response(seed).body, rng), status=200)  # type: ignore[arg-type]
        status = rng.choice([200] * 8 + [301, 400, 401, 503])
        headers = {"Location": rng.choice(["http://evil.example/x", "/redfish/v1/", "//evil/x"])}
        return web.json_response(mutate(seed, rng) if roll < 0.8 else seed, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_fuzz_redfish_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12004)
    monkeypatch.setenv("ESXBOT_TEST_FUZZ_BMC_PW", "pw")
    outcomes: dict[str, int] = {}
    async with _lying_bmc(rng) as url:
        config = BmcConfig("fuzz", url, "root", SecretRef.parse("env:ESXBOT_TEST_FUZZ_BMC_PW"), timeout=5)
        for case in range(150):
            try:
                async with asyncio.timeout(10), RedfishClient(config, poll_interval=0.01) as client:
                    await client.reset(ResetType.ON)
                outcome = "ok"
            except RedfishError as exc:
                outcome = exc.kind.value
            except Exception as exc:
                pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("ok", 0) > 0 and len(outcomes) > 2, outcomes


NOTES = tuple((DATA / "notes" / name).read_bytes() for name in ("esxi-70u2c.txt", "esxi-70u2d.broadcom.html"))


def test_fuzz_release_notes_pages() -> None:
    rng = random.Random(12005)
    for case in range(150):
        page = mutate_bytes(rng.choice(NOTES), rng, others=NOTES)
        kind = rng.choice(["text/html; charset=utf-8", "text/plain", None, "text/html; charset=bogus"])
        try:
            parse_notes(page, url="https://docs.example/notes", content_type=kind)
        except Exception as exc:
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")


INVENTORY_SEED: Any = {
    "hosts": [
        {
            "name": "esx01.lab.local",
            "build": 17867351,
            "boot": {"kind": "usb", "device": "mpx.vmhba32:C0:T0:L0"},
        },
        {"name": "esx02.lab.local", "cluster": "prod", "address": "10.0.0.2", "boot": "sd"},
    ]
}
CONFIG_SEED: Any = {
    "database_url": "var/esxbot.db",
    "auth": {"roles": {"matrix:@*:example.org": "viewer"}, "default_role": "viewer"},
    "matrix": {
        "homeserver": "https://m.example",
        "user_id": "@esxbot:example.org",
        "allowed_rooms": ["!a:b"],
    },
    "vcenters": [{"name": "vc", "host": "vc.example", "port": 443}],
    "syslog": {"udp_port": 514, "trusted_relays": ["10.0.0.0/8"], "max_connections_per_source": 8},
}


def test_fuzz_inventory_and_config_yaml(tmp_path: Path) -> None:
    rng = random.Random(12006)
    inventory, config = tmp_path / "inventory.yaml", tmp_path / "esxbot.yaml"
    for case in range(200):
        text = yaml.safe_dump(mutate(INVENTORY_SEED, rng))
        inventory.write_bytes(mutate_bytes(text.encode(), rng) if rng.random() < 0.3 else text.encode())
        try:
            load_inventory(inventory)
        except InventoryError:
            pass
        except Exception as exc:
            pytest.fail(f"inventory case {case}: {type(exc).__name__}: {exc}\n{text[:500]}")
        text = yaml.safe_dump(mutate(CONFIG_SEED, rng))
        config.write_bytes(mutate_bytes(text.encode(), rng) if rng.random() < 0.3 else text.encode())
        try:
            settings = load_settings(config, env={}, dotenv=None)
            read_sections(settings)  # every section through its schema, as `esxbot run` does
        except ConfigError:
            pass
        except Exception as exc:
            pytest.fail(f"config case {case}: {type(exc).__name__}: {exc}\n{text[:500]}")
