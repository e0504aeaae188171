"""One esxbot instance for the two-process failover test: leader election + outbox delivery to an HTTP sink.

``python -m tests.leader_worker <postgres-url> <sink-url> <name>`` campaigns for leadership with short
leases and, while leader, delivers the outbox to the sink (a stand-in chat platform that records
what it received). It prints ``LEADER <term>`` / ``FOLLOWER`` lines so the test can follow it.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from bot.chat.base import DeliveryError, TransportHealth
from bot.chat.outbox import Outbox
from bot.chat.render_text import render_text
from bot.clock import SystemClock
from bot.messages import Reply
from bot.runtime.leader import LeaderTiming, PostgresLeader, run_while_leader
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.connect import open_database
from bot.store.subscriptions import SubscriptionRepo

TIMING = LeaderTiming(heartbeat=0.5, lease=5.0, retry=0.5, keepalive_idle=2, keepalive_interval=1)


class SinkAdapter:
    platform = "slack"

    def __init__(self, session: aiohttp.ClientSession, url: str, name: str) -> None:
        self._session, self._url, self._name = session, url, name

    async def run(self, handle: object) -> None:
        await asyncio.Event().wait()

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        body = {"room": room, "text": render_text(reply), "by": self._name}
        async with self._session.post(self._url, json=body) as response:
            if response.status != 200:
                raise DeliveryError(f"sink answered {response.status}", retry_after=0.3)
            return str((await response.json())["id"])

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        raise DeliveryError("edits are not used here", permanent=True)

    def health(self) -> TransportHealth:
        return TransportHealth(self.platform, True, 0.0)


async def main(url: str, sink: str, name: str) -> None:
    db = await open_database(url)
    leadership = PostgresLeader(url, db, timing=TIMING, application_name=f"esxbot-{name}")
    leadership.subscribe(
        lambda leader: print(f"LEADER {leadership.token}" if leader else "FOLLOWER", flush=True)
    )
    outbox = Outbox(OutboxRepo(db), SubscriptionRepo(db), SystemClock())
    async with aiohttp.ClientSession() as session:
        adapters = {"slack": SinkAdapter(session, sink, name)}

        async def deliver() -> None:
            while True:
                await outbox.deliver_due(adapters, "slack")
                await asyncio.sleep(0.2)

        print("STARTED", flush=True)
        await asyncio.gather(leadership.run(), run_while_leader(leadership, {"outbox": deliver}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
