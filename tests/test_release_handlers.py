"""Release commands and the notification text over the demo inventory and bundled release notes."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from bot.builds import BuildCatalog
from bot.clock import FakeClock
from bot.inventory.merged import StaticInventory
from bot.inventory.static_file import parse_inventory
from bot.messages import Command, Conversation, Reply, Table, Text, User
from bot.releases.match_rules import MatchRuleSet
from bot.releases.service import ReleaseAnnouncer, ReleaseService, bundled_releases
from handlers.releases import affected as affected_cmd
from handlers.releases import fixes as fixes_cmd
from handlers.releases import pr as pr_cmd
from handlers.releases import releases as releases_cmd
from tests.test_matching import DEMO


@pytest.fixture
def service() -> ReleaseService:
    catalog = BuildCatalog.bundled()

    def lookup(build: int) -> tuple[str | None, str | None] | None:
        known = catalog.lookup(build)
        return (known.version, known.name) if known else None

    data = yaml.safe_load((DEMO / "inventory.yaml").read_text(encoding="utf-8"))
    inventory = StaticInventory(
        parse_inventory(data, "demo", lookup), "demo", datetime(2021, 9, 1, tzinfo=UTC)
    )
    return ReleaseService(catalog, MatchRuleSet.bundled(), inventory, bundled=bundled_releases())


async def _say(service: ReleaseService, spec: Any, *args: str) -> Reply:
    ctx: Any = SimpleNamespace(
        services=SimpleNamespace(releases=service, clock=FakeClock(datetime(2021, 9, 1, tzinfo=UTC))),
        command=Command(User("console:ann"), Conversation("console", "console"), "x"),
    )
    result: Reply = await spec.handler(ctx, *args)
    return result


async def test_pr_command_verdicts(service: ReleaseService) -> None:
    reply = await _say(service, pr_cmd, "2777003")
    assert reply.ok
    assert reply.data["verdicts"]["esx01"] == "affected"
    assert reply.data["verdicts"]["esx03"] == "not-affected"
    assert reply.data["verdicts"]["esx04"] == "fixed"


async def test_releases_fixes_affected(service: ReleaseService) -> None:
    listing = await _say(service, releases_cmd)
    assert [r["name"] for r in listing.data["releases"]][:3] == [
        "ESXi 7.0 Update 2d",
        "ESXi 7.0 Update 2c",
        "ESXi 7.0 Update 2a",
    ]
    fixes = await _say(service, fixes_cmd, "7.0", "U2c")
    tables = [b for b in fixes.blocks if isinstance(b, Table)]
    assert "Miscellaneous Issues" in {t.title for t in tables}
    usb_row = next(r for t in tables for r in t.rows if r[0] == "PR 2777003")
    assert usb_row[1] == "2"  # esx01 and esx02
    affected = await _say(service, affected_cmd, "PR", "2824750")
    assert list(affected.data["hosts"]) == ["pflex01.corp.example"]
    missing = await _say(service, pr_cmd, "9999999")
    assert not missing.ok


async def test_check_notes_and_announcement(service: ReleaseService) -> None:
    esx01 = next(h for h in service.hosts() if h.name.startswith("esx01"))
    pending = await service.pending(esx01)
    assert any(fix.pr == "2777003" for _, fix, _ in pending.items)
    assert pending.target is not None and pending.target.name == "ESXi 7.0 Update 2c"
    blocks = await service.host_notes(esx01)
    assert blocks and isinstance(blocks[0], Table)

    published: list[tuple[str, Reply, str]] = []

    class Outbox:
        async def publish(self, topic: str, reply: Reply, *, key: str) -> list[str]:
            published.append((topic, reply, key))
            return ["console:console"]

    release = await service.find("7.0 U2c")
    assert release is not None
    await ReleaseAnnouncer(service, Outbox())(release, update=False)
    topic, reply, key = published[0]
    assert (topic, key) == ("releases", "release:18426014")
    assert "ESXi 7.0 Update 2c (build 18426014, 2021-08-24)" in reply.summary
    table = next(b for b in reply.blocks if isinstance(b, Table))
    assert ("PR 2777003", "affects esx01, esx02") in {row[:2] for row in table.rows}
    assert all(row[1].startswith("affects") for row in table.rows)
    texts = [b.text for b in reply.blocks if isinstance(b, Text)]
    assert texts[1].startswith("Affected hosts: prod-c1-h01 (5 fixes), esx01 (4 fixes)")
    possibly = next(t for t in texts if t.startswith("Possibly affected:"))
    assert "undecided by no condition esxbot recognises (55 pairs)" in possibly
