"""Text and JSON renderers against golden files; JSON round-trips (the outbox stores replies as JSON).

Set ESXBOT_UPDATE_GOLDEN=1 (tests/golden.py) to rewrite the golden files after an intended change,
then review the diff.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.chat.render_json import reply_from_dict, reply_to_dict
from bot.chat.render_text import render_text
from bot.messages import Actions, Button, Code, Confirm, Fields, Reply, Style, Table, Text
from tests.golden import check_golden

GOLDEN = Path(__file__).parent / "golden"

SAMPLES = {
    "card": Reply(
        summary="esx01: ESXi 7.0 Update 2a",
        blocks=(
            Fields(
                (("Release", "ESXi 7.0 Update 2a (7.0.2, build 17867351)"), ("Boot device", "usb (vmhba32)")),
                title="esx01.lab.local",
            ),
            Text("boots from USB", Style.WARNING),
            Text("bootbank lost", Style.ERROR),
        ),
    ),
    "table": Reply(
        summary="2 hosts",
        blocks=(
            Table(
                ("host", "build"), (("esx01", "17867351"), ("esx03-long-name", "18426014")), title="2 hosts"
            ),
        ),
    ),
    "confirm": Reply(
        summary="Will patch",
        blocks=(
            Text("Will patch esx01 to ESXi 7.0 Update 2c"),
            Code("maintenance enter\ninstall 18426014\nreboot"),
            Confirm(
                "k7m2x9qa",
                "Confirm within 5 min; the token works once.",
                datetime(2021, 8, 24, 12, 5, tzinfo=UTC),
            ),
            Actions((Button("Acknowledge", "ack 12"), Button("Shut down", "shutdown esx01", danger=True))),
        ),
        data={"host": "esx01"},
        in_thread=True,
    ),
    "hostile": Reply(summary="<b>&amp;", blocks=(Text("<script>alert(1)</script> & `x`"),)),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_text_golden(name: str) -> None:
    check_golden(GOLDEN / "text" / f"{name}.txt", render_text(SAMPLES[name]) + "\n")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_json_golden_and_round_trip(name: str) -> None:
    as_dict = reply_to_dict(SAMPLES[name])
    check_golden(GOLDEN / "json" / f"{name}.json", json.dumps(as_dict, indent=2, sort_keys=True) + "\n")
    assert reply_from_dict(json.loads(json.dumps(as_dict))) == SAMPLES[name]


def test_unknown_block_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown block type"):
        reply_from_dict({"summary": "x", "blocks": [{"type": "video"}]})
