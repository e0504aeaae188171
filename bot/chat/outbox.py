"""Persistent notification delivery: write first, send, mark sent with the message id, retry.

Rows are delivered in order per room among deliverable messages: a room's next row waits for an
earlier row not tried yet, and an ordinary row for one in its first two retries (a short hiccup keeps
the order); an alert page never waits for a retrying row, and after two failures a row is moved aside
so it holds nothing back (``OutboxRepo.due``). Edits wait for their own message; an edit whose message
failed for good is posted as a new message. Failures are retried with capped exponential backoff and
jitter (their own budget, then "failed" with the error, counted in ``esxbot_outbox_failed`` and listed
by the ``outbox`` command) and wait out the platform's ``retry_after``. A row whose send succeeded but
whose "sent" mark was lost in a crash is sent again after restart: a duplicate is better than a loss.
Later updates of the same notification are rows with ``edit_of`` = the first row's key, delivered as
an in-place edit of the stored message id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping

from bot.chat.base import ChatAdapter, DeliveryError
from bot.chat.render_json import reply_from_dict, reply_to_dict
from bot.clock import Clock
from bot.messages import Reply
from bot.store.outbox_records import OutboxRepo, OutboxRow
from bot.store.subscriptions import SubscriptionRepo

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
MAX_BACKOFF = 300.0
IDLE_POLL = 2.0  # rows queued by another instance are seen within this many seconds


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next try: the platform's ``retry_after``, else capped backoff with jitter."""
    if retry_after is not None:
        return retry_after
    return min(MAX_BACKOFF, 2.0**attempts) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter


def split_key(conversation: str) -> tuple[str, str]:
    platform, sep, room = conversation.partition(":")
    if not sep or not room:
        raise ValueError(f"not a conversation key (platform:room): {conversation!r}")
    return platform, room


class Outbox:
    def __init__(
        self,
        repo: OutboxRepo,
        subscriptions: SubscriptionRepo,
        clock: Clock,
        *,
        on_failed: Callable[[str], None] | None = None,
    ) -> None:
        self._repo = repo
        self._subs = subscriptions
        self._clock = clock
        self._wake: dict[str, asyncio.Event] = {}
        self.on_failed = on_failed  # (platform) for the failed-for-good metric

    def _event(self, platform: str) -> asyncio.Event:
        return self._wake.setdefault(platform, asyncio.Event())

    async def enqueue(
        self,
        conversation: str,
        reply: Reply,
        *,
        thread: str | None = None,
        key: str | None = None,
        edit_of: str | None = None,
    ) -> int | None:
        platform, room = split_key(conversation)
        row_id = await self._repo.add(
            platform=platform,
            room=room,
            payload=json.dumps(reply_to_dict(reply), sort_keys=True),
            now=self._clock.now().timestamp(),
            thread=thread,
            key=key,
            edit_of=edit_of,
        )
        self._event(platform).set()
        return row_id

    async def publish(self, topic: str, reply: Reply, *, key: str) -> list[str]:
        """Queue ``reply`` once for every room subscribed to ``topic``; ``key`` makes it idempotent."""
        rooms = await self._subs.rooms(topic)
        for room in rooms:
            await self.enqueue(room, reply, key=f"{key}@{room}")
        return rooms

    async def deliver_due(self, adapters: Mapping[str, ChatAdapter], platform: str) -> int:
        adapter = adapters[platform]
        sent = 0
        for row in await self._repo.due(platform, self._clock.now().timestamp()):
            if await self._deliver(adapter, row):
                sent += 1
        return sent

    async def _deliver(self, adapter: ChatAdapter, row: OutboxRow) -> bool:
        now = self._clock.now().timestamp()
        try:
            reply = reply_from_dict(json.loads(row.payload))
            # an edit is due only once the rows before it in its chain are sent or failed for good
            target = await self._repo.chain_message_id(row.edit_of) if row.edit_of else None
            if target is not None:
                await adapter.edit(row.room, target, reply)
                message_id = target
            else:
                if row.edit_of:
                    log.warning(
                        "outbox row %d: the message %s it edits was never sent; posting it as a new one",
                        row.id,
                        row.edit_of,
                    )
                message_id = await adapter.send(
                    row.room, reply, thread=row.thread, key=row.key or f"outbox-{row.id}"
                )
        except DeliveryError as exc:
            return await self._retry(row, str(exc), exc.retry_after, exc.permanent, now)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("outbox row %d has an unreadable payload, dropping it: %s", row.id, exc)
            await self._repo.mark_failed(row.id, f"unreadable payload: {exc}")
            if self.on_failed is not None:
                self.on_failed(row.platform)
            return False
        except Exception as exc:
            log.exception("outbox row %d: unexpected error from %s", row.id, row.platform)
            return await self._retry(row, repr(exc), None, False, now)
        await self._repo.mark_sent(row.id, message_id, self._clock.now().timestamp())
        return True

    async def _retry(
        self, row: OutboxRow, error: str, retry_after: float | None, permanent: bool, now: float
    ) -> bool:
        if permanent or row.attempts + 1 >= MAX_ATTEMPTS:
            log.error(
                "outbox row %d to %s:%s failed for good after %d attempt(s): %s (see the `outbox` command)",
                row.id,
                row.platform,
                row.room,
                row.attempts + 1,
                error,
            )
            await self._repo.mark_failed(row.id, error)
            if self.on_failed is not None:
                self.on_failed(row.platform)
            return False
        delay = retry_delay(row.attempts, retry_after)
        log.warning(
            "outbox row %d to %s:%s: %s; retry in %.1fs", row.id, row.platform, row.room, error, delay
        )
        await self._repo.mark_retry(row.id, error, now + delay)
        return False

    async def run(self, adapters: Mapping[str, ChatAdapter], platform: str) -> None:
        """Deliver forever: immediately on enqueue, else when the next retry is due."""
        wake = self._event(platform)
        while True:
            wake.clear()
            if await self.deliver_due(adapters, platform):
                continue  # rooms may have their next row due right away
            next_at = await self._repo.next_due_at(platform)
            timeout = IDLE_POLL if next_at is None else max(0.05, next_at - self._clock.now().timestamp())
            try:
                async with asyncio.timeout(min(timeout, IDLE_POLL)):
                    await wake.wait()
            except TimeoutError:
                pass
