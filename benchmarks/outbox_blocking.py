"""A page queued behind a failing message in the same room: how long until it is delivered?

- esxbot: the outbox as it is (a row retrying after a failure holds nothing back; an edit whose
  message failed for good is posted as a new message).
- naive: the same outbox with strict oldest-first delivery per room (the earlier query: a room's next
  row waits for the one before it, retries included) — a page waits out the failing row's whole budget.
- floor: the page alone in a clean room.
Each round queues, in one room, a job card that the platform refuses (half the rounds: a transient
error retried with backoff, half: a permanent error), two edits of that card, then an alert page; the
adapter is an in-memory platform that takes 5 ms per send. Rounds that do not deliver the page
within ``--timeout`` seconds count as the timeout. SQLite in a temp dir, the real clock.
Run: ``.venv/bin/python benchmarks/outbox_blocking.py [--rounds 10] [--timeout 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.chat.base import CommandHandler, DeliveryError, TransportHealth
from bot.chat.outbox import Outbox
from bot.clock import SystemClock
from bot.messages import Reply, Text
from bot.store.outbox_records import OutboxRepo, OutboxRow, _row
from bot.store.sql.migrate import migrate
from bot.store.sql.sqlite import SqliteDatabase
from bot.store.subscriptions import SubscriptionRepo


class Platform:
    """An in-memory chat platform: 5 ms per call; messages whose text starts with "poison" are refused."""

    platform = "bench"

    def __init__(self, *, permanent: bool) -> None:
        self.permanent = permanent
        self.delivered: dict[str, float] = {}
        self.paged = asyncio.Event()
        self._ids = 0

    async def run(self, handle: CommandHandler) -> None:
        await asyncio.Event().wait()

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        await asyncio.sleep(0.005)
        text = next((b.text for b in reply.blocks if isinstance(b, Text)), reply.summary)
        if text.startswith("poison"):
            raise DeliveryError("refused", permanent=self.permanent)
        self._ids += 1
        self.delivered[text] = time.monotonic()
        if text.startswith("page"):
            self.paged.set()
        return f"m{self._ids}"

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        await asyncio.sleep(0.005)

    def health(self) -> TransportHealth:
        return TransportHealth("bench", True, 0.0)


class StrictRepo(OutboxRepo):
    """The naive order: only the oldest pending row of each room may go."""

    _STRICT = (
        "o.state = 'pending' AND o.platform = ? AND o.id = (SELECT MIN(i.id) FROM outbox i"
        " WHERE i.state = 'pending' AND i.platform = o.platform AND i.room = o.room)"
    )

    async def due(self, platform: str, now: float, limit: int = 50) -> list[OutboxRow]:
        rows = await self._db.fetchall(
            f"SELECT o.* FROM outbox o WHERE {self._STRICT} AND o.next_attempt_at <= ?"  # noqa: S608
            " ORDER BY o.id LIMIT ?",
            (platform, now, limit),
        )
        return [_row(r) for r in rows]

    async def next_due_at(self, platform: str) -> float | None:
        row = await self._db.fetchone(
            f"SELECT MIN(o.next_attempt_at) AS t FROM outbox o WHERE {self._STRICT}",  # noqa: S608
            (platform,),
        )
        return None if row is None or row["t"] is None else float(row["t"])


async def _round(kind: str, n: int, permanent: bool, directory: Path, limit: float) -> float:
    db = await SqliteDatabase.open(directory / f"{kind}-{n}.db")
    await migrate(db)
    repo = StrictRepo(db) if kind == "naive" else OutboxRepo(db)
    outbox = Outbox(repo, SubscriptionRepo(db), SystemClock())
    platform = Platform(permanent=permanent)
    runner = asyncio.create_task(outbox.run({"bench": platform}, "bench"))
    try:
        room = "bench:clean" if kind == "floor" else "bench:ops"
        if kind != "floor":
            await outbox.enqueue(room, Reply.text("poison: job card"), key="card")
            await outbox.enqueue(room, Reply.text("card 2/3"), key="card/1", edit_of="card")
            await outbox.enqueue(room, Reply.text("card 3/3"), key="card/2", edit_of="card")
        queued = time.monotonic()
        await outbox.enqueue(room, Reply.text("page: esx02 lost its bootbank"), key="alert:1:page@bench:ops")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await platform.paged.wait()
        return platform.delivered.get("page: esx02 lost its bootbank", queued + limit) - queued
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await db.close()


async def main(rounds: int, limit: float) -> dict[str, dict[str, float]]:
    results: dict[str, list[float]] = {"esxbot": [], "naive": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as tmp:
        for n in range(rounds):
            permanent = n % 2 == 1
            for kind in results:
                results[kind].append(await _round(kind, n, permanent, Path(tmp), limit))
    summary = {
        kind: {
            "median_ms": statistics.median(values) * 1000,
            "max_ms": max(values) * 1000,
            "timed_out": sum(1 for v in values if v >= limit),
        }
        for kind, values in results.items()
    }
    head = f"{'variant':<8} {'median ms':>10} {'max ms':>10} {'timed out':>10}"
    print(f"{head}   ({rounds} rounds, timeout {limit:g} s)")
    for kind, row in summary.items():
        print(f"{kind:<8} {row['median_ms']:>10.1f} {row['max_ms']:>10.1f} {row['timed_out']:>10}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=8.0)
    args = parser.parse_args()
    found = asyncio.run(main(args.rounds, args.timeout))
    print(
        json.dumps(
            {"benchmark": "outbox_blocking", "rounds": args.rounds, "timeout_s": args.timeout, **found}
        )
    )
