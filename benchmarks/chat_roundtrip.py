"""Chat round trip over a real Synapse: a person's ``!esx check <host>`` to the bot's reply.

- esxbot: the real bot (``App``: dispatcher, demo inventory, audit, SQLite inbox and dedupe) on the
  Matrix adapter, long-polling sync. Goal: median ≤ 300 ms.
- naive: an nio bot that short-polls (``sync(timeout=0)`` every 500 ms, a common first loop) and
  answers with a fixed text: what polling costs.
- floor: a plain nio echo client with a long-poll sync that answers at once, no bot logic: the
  homeserver's and the two syncs' own cost.
The person is one nio client with a long-poll sync in every case; times are from just before its
``room_send`` to the moment its sync hands over the answer. Synapse is started here (SQLite, loopback).
Run: ``.venv/bin/python benchmarks/chat_roundtrip.py [--rounds 40]``.
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
from collections.abc import AsyncIterator, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nio import AsyncClient, RoomMessageText, RoomSendError

from tests.fixtures.matrix_bot import HOST, room_with_bot, running_bot
from tests.fixtures.synapse import MatrixAccount, MatrixPerson, SynapseServer, person, start_synapse

# The same lean filter as the bot's sync, so the floor pays for nothing the bot does not.
_LEAN_FILTER = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {"ephemeral": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}},
}

Variant = Callable[[SynapseServer, MatrixAccount, Path], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _esxbot(server: SynapseServer, account: MatrixAccount, work: Path) -> AsyncIterator[None]:
    async with running_bot(server, work / "bot.db"):
        yield


def _echo_client(server: SynapseServer, account: MatrixAccount, *, poll: float | None) -> Variant:
    """An nio client that joins on invite and answers every text; ``poll`` = short-poll interval."""

    @contextlib.asynccontextmanager
    async def variant(_server: SynapseServer, _account: MatrixAccount, _work: Path) -> AsyncIterator[None]:
        client = AsyncClient(server.base_url, account.user_id, device_id=account.device_id)
        client.restore_login(account.user_id, account.device_id, account.access_token)
        await client.sync(timeout=0, full_state=True)

        async def on_text(room: object, event: RoomMessageText) -> None:
            if event.sender != account.user_id:
                content = {"msgtype": "m.notice", "body": f"echo {event.body}"}
                answer = await client.room_send(getattr(room, "room_id", ""), "m.room.message", content)
                if isinstance(answer, RoomSendError):
                    raise RuntimeError(answer.message)

        client.add_event_callback(on_text, RoomMessageText)  # type: ignore[arg-type]

        async def loop() -> None:
            while True:
                response = await client.sync(
                    timeout=0 if poll else 30_000, since=client.next_batch, sync_filter=_LEAN_FILTER
                )
                for room_id in getattr(getattr(response, "rooms", None), "invite", {}):
                    await client.join(room_id)
                if poll:
                    await asyncio.sleep(poll)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.close()

    return variant


async def _measure(
    ann: MatrixPerson, room: str, bot_id: str, text: str, rounds: int, warmup: int
) -> list[float]:
    times: list[float] = []
    for i in range(rounds + warmup):
        mark = len(ann.events)
        started = time.perf_counter()
        await ann.say(room, text)
        await ann.wait_for_message(room, bot_id, after=mark, timeout=30)
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _run(server: SynapseServer, work: Path, rounds: int) -> dict[str, dict[str, float]]:
    echo, poller = server.register("echo"), server.register("poller")
    variants: list[tuple[str, MatrixAccount, Variant, str]] = [
        ("floor", echo, _echo_client(server, echo, poll=None), f"!esx check {HOST}"),
        ("esxbot", server.bot, _esxbot, f"!esx check {HOST}"),
        ("naive", poller, _echo_client(server, poller, poll=0.5), f"!esx check {HOST}"),
    ]
    results: dict[str, dict[str, float]] = {}
    async with person(server, server.human) as ann:
        for name, account, variant, text in variants:
            async with variant(server, account, work):
                room = await room_with_bot(ann, account.user_id)
                times = await _measure(ann, room, account.user_id, text, rounds, warmup=3)
            results[name] = {
                "median_ms": round(statistics.median(times), 1),
                "p99_ms": round(_p99(times), 1),
                "min_ms": round(min(times), 1),
                "rounds": len(times),
            }
    return results


async def _main(rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="esxbot-bench-") as tmp:
        server = start_synapse(Path(tmp))
        try:
            server.admin = server.register("admin", admin=True)
            server.bot = server.register("esxbot")
            server.human = server.register("ann")
            results = await _run(server, Path(tmp), rounds)
        finally:
            server.stop()
    return {"benchmark": "chat_roundtrip", "synapse_startup_s": round(server.startup_seconds, 2), **results}


def _table(figures: dict[str, object]) -> str:
    lines = [f"{'variant':<8} {'median ms':>10} {'p99 ms':>8} {'min ms':>8} {'rounds':>7}"]
    for name in ("esxbot", "naive", "floor"):
        row = figures[name]
        assert isinstance(row, dict)
        median, p99, low = row["median_ms"], row["p99_ms"], row["min_ms"]
        lines.append(f"{name:<8} {median:>10.1f} {p99:>8.1f} {low:>8.1f} {row['rounds']:>7}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    figures = asyncio.run(_main(args.rounds))
    ours = figures["esxbot"]
    assert isinstance(ours, dict)
    figures["goal_median_ms"] = 300
    figures["goal_met"] = ours["median_ms"] <= 300
    print(_table(figures))
    startup, met = figures["synapse_startup_s"], figures["goal_met"]
    print(f"Synapse started in {startup} s; goal median ≤ 300 ms met: {met}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
