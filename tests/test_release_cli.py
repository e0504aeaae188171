"""CLI pieces: ``notes parse`` and ``match`` over the demo notes and inventory."""

from __future__ import annotations

import json

from bot.releases.offline_cli import match_notes, notes_parse
from tests.test_matching import DEMO


async def test_notes_parse_json() -> None:
    text, code = await notes_parse(str(DEMO / "notes" / "esxi-70u2d.html"), as_json=True)
    data = json.loads(text)
    assert code == 0
    assert (data["name"], data["build"], data["release_date"]) == (
        "ESXi 7.0 Update 2d",
        18538813,
        "2021-09-14",
    )
    assert [f["pr"] for f in data["fixes"]] == ["2824750"]
    missing, code = await notes_parse("/nonexistent/notes.html")
    assert code == 2 and "cannot read" in missing


async def test_match_json_contract() -> None:
    text, code = await match_notes(
        [str(DEMO / "notes" / "esxi-70u2c.html"), str(DEMO / "notes" / "esxi-70u2d.html")],
        str(DEMO / "inventory.yaml"),
        as_json=True,
    )
    rows = json.loads(text)
    assert code == 0
    assert set(rows[0]) == {"pr", "release", "build", "host", "verdict", "reasons"}
    verdict = {(r["pr"], r["host"].split(".")[0]): r["verdict"] for r in rows}
    assert verdict[("2777003", "esx01")] == "affected"
    assert verdict[("2777003", "esx03")] == "not-affected"
    assert verdict[("2777003", "esx04")] == "fixed"
    hit = {h for (pr, h), v in verdict.items() if pr == "2824750" and v in ("affected", "possibly-affected")}
    assert hit == {"pflex01"}
