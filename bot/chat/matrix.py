"""The Matrix adapter (matrix-nio): ``!esx …`` in allowed rooms and DMs in, ``m.notice`` replies out.

One long-poll sync loop. Each batch's commands (and ✅ reactions on our confirm messages) are claimed
in the inbound-dedupe table and written to the inbox in the same transaction that stores the batch's
``next_batch``, then answered concurrently; a restarted bot finishes what its inbox still holds, so a
command is neither lost nor run twice. The first start ever skips the backlog. Stale commands that
would change hosts are answered "ignored", not run. Sync failures back off (capped), rate limits are
waited out, a dead access token stops the adapter with a clear error. The bot does not do end-to-end
encryption: invited to an encrypted room (or a room that turns encrypted), it says so there and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.chat.base import CommandHandler, DeliveryError, TransportHealth
from bot.chat.matrix_events import (
    UNKNOWN_TOKEN,
    MatrixError,
    MatrixFatal,
    MatrixRateLimited,
    checked,
    edit_content,
    parse_event,
    reply_content,
    transaction_id,
)
from bot.chat.matrix_session import MatrixSession
from bot.clock import Clock, SystemClock
from bot.config import MatrixSettings
from bot.messages import Command, Confirm, Conversation, Reply, Style, Text, User
from bot.store.audit import AuditRepo
from bot.store.confirmations import ConfirmationRepo
from bot.store.inbound import InboundRepo
from bot.store.kv import KeyValueRepo
from bot.store.matrix_inbox import InboxItem, MatrixInbox
from bot.store.sql.base import Database

log = logging.getLogger(__name__)

PLATFORM = "matrix"
ENCRYPTION = "m.room.encryption"
_PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_UNKNOWN"}
_TIMELINE_LIMIT = 100
_SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"types": ["m.direct"]},  # which rooms are direct messages
    "room": {
        "timeline": {"limit": 100},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


class MatrixAdapter:
    """``ChatAdapter`` for Matrix. ``mutating(text)`` says whether a command may change a host."""

    platform = PLATFORM

    def __init__(
        self,
        settings: MatrixSettings,
        db: Database,
        *,
        clock: Clock | None = None,
        mutating: Callable[[str], bool] = lambda _text: False,
        stale_after: float = 120.0,
        sync_timeout: float = 30.0,
        backoff_cap: float = 60.0,
        max_rate_wait: float = 120.0,
    ) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock or SystemClock()
        self._mutating = mutating
        self._stale_after = stale_after
        self._sync_timeout = sync_timeout
        self._max_rate_wait = max_rate_wait
        self._kv, self._inbound, self._inbox = KeyValueRepo(db), InboundRepo(db), MatrixInbox(db)
        self._confirmations, self._audit = ConfirmationRepo(db), AuditRepo(db)
        self._session = MatrixSession(
            settings, self._kv, self._clock, request_timeout=sync_timeout + 30, backoff_cap=backoff_cap
        )
        self._client = self._session.client
        self._ready = asyncio.Event()
        self._allowed_rooms: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._refused: set[str] = set()  # encrypted rooms already told and left
        self._last_sync: float | None = None
        self._unparsable = 0  # foreign events our parser dropped for breaking the spec's shape
        self._direct_rooms: set[str] = set()  # from the account's m.direct account data
        self._invited_direct: set[str] = set()  # joined on an is_direct invitation (kept in kv)

    @property
    def user_id(self) -> str:
        return self._settings.user_id

    @property
    def dropped_events(self) -> int:
        """Foreign events dropped for breaking the spec's shape, before or after nio parsed them."""
        return self._unparsable + self._client.screened

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self, handle: CommandHandler) -> None:
        try:
            await self._session.login()
            stored = await self._kv.get(self._session.key("direct_rooms"))
            self._invited_direct = set(json.loads(stored)) if stored else set()
            await self._join_allowed_rooms()
            await self._inbox.prune(self._clock.now() - timedelta(days=1))
            self._ready.set()
            await self._resume(handle)
            await self._sync_forever(handle)
        finally:
            self._ready.clear()
            self._session.detail = "stopped"
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._session.close()

    async def _join_allowed_rooms(self) -> None:
        for room in self._settings.allowed_rooms:
            try:
                if room.startswith("#"):
                    room = checked(await self._client.room_resolve_alias(room), f"resolve {room}").room_id
                self._allowed_rooms.add(room)
                checked(await self._client.join(room), f"join {room}")
            except MatrixFatal:
                raise
            except (MatrixError, OSError, TimeoutError) as exc:
                log.warning("matrix: cannot join allowed room %s: %s", room, exc)

    # ---- sync ------------------------------------------------------------------------------------

    async def _sync_forever(self, handle: CommandHandler) -> None:
        since = await self._kv.get(self._session.key("next_batch"))
        first = True
        failures = 0
        while True:
            try:
                response = checked(
                    await self._client.sync(
                        timeout=0 if first else int(self._sync_timeout * 1000),
                        since=since,
                        full_state=first,
                        sync_filter=_SYNC_FILTER,
                    ),
                    "sync",
                )
            except MatrixRateLimited as exc:
                await self._clock.sleep(exc.retry_after or 1.0)
                continue
            except MatrixFatal as exc:
                if exc.code != UNKNOWN_TOKEN or not self._session.can_relogin:
                    self._session.detail = str(exc)
                    log.error("matrix: %s", exc)
                    raise
                log.warning("matrix: access token rejected, logging in again with the password")
                await self._session.forget_token()
                await self._session.password_login()
                continue
            except Exception as exc:
                failures += 1
                delay = self._session.backoff(failures)
                self._session.detail = f"sync failed ({exc}); retrying in {delay:.1f} s"
                log.warning("matrix: %s", self._session.detail)
                await self._clock.sleep(delay)
                continue
            failures = 0
            self._last_sync = self._clock.monotonic()
            self._session.detail = "syncing"
            self._read_direct(response)
            await self._invites(response)
            fresh = await self._record(
                self._collect(response) if since is not None else [], response.next_batch
            )
            since, first = response.next_batch, False
            for item in fresh:
                self._spawn(handle, item)

    def _collect(self, response: Any) -> list[InboxItem]:
        items: list[InboxItem] = []
        for room_id, info in response.rooms.join.items():
            room = self._client.rooms.get(room_id)
            if room is not None and room.encrypted and room_id not in self._refused:
                self._spawn_refusal(room_id)
                continue
            if info.timeline.limited and len(info.timeline.events) >= _TIMELINE_LIMIT:
                log.warning(
                    "matrix: %s had more events than one sync holds; older ones were skipped", room_id
                )
            direct = self._is_direct(room_id)
            for event in info.timeline.events:
                source = getattr(event, "source", None)
                if not isinstance(source, dict):
                    continue
                incoming = self._parse(source, room_id, direct)
                if incoming is not None and self._room_allowed(room_id):
                    items.append(incoming)
        return items

    def _parse(self, source: dict[str, Any], room_id: str, direct: bool) -> InboxItem | None:
        """One foreign event; a malformed one is dropped, counted and logged, never raised."""
        try:
            return parse_event(source, room_id, me=self.user_id, prefix=self._settings.prefix, direct=direct)
        except Exception as exc:
            self._unparsable += 1
            event_id = str(source.get("event_id"))[:80]
            log.warning("matrix: dropped malformed event %s in %s: %s", event_id, room_id, exc)
            return None

    async def _record(self, items: list[InboxItem], next_batch: str) -> list[InboxItem]:
        now = self._clock.now()
        fresh: list[InboxItem] = []
        async with self._db.transaction():
            for item in items:
                if await self._inbound.claim(PLATFORM, item.event_id, at=now):
                    await self._inbox.add(item, at=now)
                    fresh.append(item)
            await self._kv.set(self._session.key("next_batch"), next_batch)
        return fresh

    def _read_direct(self, response: Any) -> None:
        """The account's ``m.direct`` (user → DM rooms), when the sync carries a new one."""
        for event in getattr(response, "account_data_events", ()):
            if getattr(event, "type", None) != "m.direct":
                continue
            content = getattr(event, "content", None)
            rooms = content.values() if isinstance(content, dict) else ()
            self._direct_rooms = {
                room for ids in rooms if isinstance(ids, list) for room in ids if isinstance(room, str)
            }

    async def _invites(self, response: Any) -> None:
        for room_id, info in response.rooms.invite.items():
            own = next(
                (
                    e
                    for e in info.invite_state
                    if isinstance(getattr(e, "source", None), dict)
                    and e.source.get("type") == "m.room.member"
                    and e.source.get("state_key") == self.user_id
                ),
                None,
            )
            sender = own.source.get("sender") if own is not None else None
            inviter = sender if isinstance(sender, str) else None
            content = getattr(own, "content", None)  # nio moves it out of ``source``
            direct = isinstance(content, dict) and content.get("is_direct") is True
            encrypted = any(
                isinstance(getattr(e, "source", None), dict) and e.source.get("type") == ENCRYPTION
                for e in info.invite_state
            )
            try:
                if room_id in self._allowed_rooms or (
                    inviter and self._settings.allowed_users and self._user_allowed(inviter)
                ):
                    checked(await self._client.join(room_id), f"join {room_id}")
                    log.info("matrix: joined %s on invitation by %s", room_id, inviter)
                    if encrypted:
                        await self._refuse_encrypted(room_id)
                    elif direct:
                        self._invited_direct.add(room_id)
                        await self._kv.set(
                            self._session.key("direct_rooms"), json.dumps(sorted(self._invited_direct))
                        )
                else:
                    checked(await self._client.room_leave(room_id), f"reject {room_id}")
                    log.warning(
                        "matrix: rejected invitation to %s by %s (not an allowed user)", room_id, inviter
                    )
            except MatrixFatal:
                raise
            except (MatrixError, OSError, TimeoutError) as exc:
                log.warning("matrix: invitation to %s: %s", room_id, exc)

    def _spawn_refusal(self, room_id: str) -> None:
        self._refused.add(room_id)
        task = asyncio.create_task(self._refuse_encrypted(room_id), name=f"matrix refuse {room_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refuse_encrypted(self, room_id: str) -> None:
        """The bot cannot read end-to-end encrypted rooms: it says so (unencrypted) and leaves."""
        self._refused.add(room_id)
        log.warning(
            "matrix: %s is end-to-end encrypted; I cannot read its commands, so I said so and left", room_id
        )
        note = (
            "This room is end-to-end encrypted, and I cannot read encrypted messages, so I am leaving. "
            "Talk to me in an unencrypted room, or in a direct message created without encryption."
        )
        try:
            content = reply_content(Reply(summary=note, blocks=(Text(note, Style.WARNING),)), prefix="")
            await self._send_content(room_id, content, transaction_id("encrypted", room_id))
            checked(await self._client.room_leave(room_id), f"leave {room_id}")
        except MatrixFatal:
            raise
        except (MatrixError, OSError, TimeoutError) as exc:
            log.warning("matrix: could not tell %s that I cannot read it: %s", room_id, exc)

    def _is_direct(self, room_id: str) -> bool:
        """What ``m.direct`` or the invitation said, never a guess from the member count."""
        return room_id in self._direct_rooms or room_id in self._invited_direct

    def _room_allowed(self, room_id: str) -> bool:
        return not self._settings.allowed_rooms or room_id in self._allowed_rooms

    def _user_allowed(self, user_id: str) -> bool:
        allowed = [u.removeprefix(f"{PLATFORM}:") for u in self._settings.allowed_users]
        return not allowed or any(fnmatch.fnmatchcase(user_id, pattern) for pattern in allowed)

    # ---- answering -------------------------------------------------------------------------------

    async def _resume(self, handle: CommandHandler) -> None:
        """Finish what a previous run recorded but did not answer."""
        for item in await self._inbox.unfinished():
            if item.state == "running" and (item.kind == "reaction" or self._mutating(item.text)):
                note = (
                    f"I was restarted while running `{item.text[:80]}`, so it may or may not have "
                    "finished. I will not run it again: check its result before asking again."
                )
                await self._answer_with(
                    item, Reply(summary=note, blocks=(Text(note, Style.WARNING),), ok=False)
                )
                await self._inbox.mark(item.event_id, "done")
            else:
                self._spawn(handle, item)

    def _spawn(self, handle: CommandHandler, item: InboxItem) -> None:
        task = asyncio.create_task(self._answer(handle, item), name=f"matrix {item.event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, handle: CommandHandler, item: InboxItem) -> None:
        try:
            await self._inbox.mark(item.event_id, "running")
            if item.kind == "reaction":
                item = replace(item, thread=await self._thread_of(item.room, item.reply_to))
            reply = await self._reply_for(handle, item)
            if reply is not None:
                await self._answer_with(item, reply)
            await self._inbox.mark(item.event_id, "done")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("matrix: could not answer %s in %s", item.event_id, item.room)
            # the command ran (or was refused); only its answer is lost: a restart must not report it cut off
            with contextlib.suppress(Exception):
                await self._inbox.mark(item.event_id, "done")

    async def _thread_of(self, room: str, event_id: str) -> str | None:
        """The thread ``event_id`` is in, if any: answers to a reaction belong there, not on the reaction.

        A reaction is itself a relation, and Synapse refuses a thread rooted at an event with one.
        """
        try:
            event = checked(await self._client.room_get_event(room, event_id), f"get {event_id}").event
        except MatrixFatal:
            raise
        except (MatrixError, OSError, TimeoutError) as exc:
            log.warning("matrix: cannot read %s in %s to find its thread: %s", event_id, room, exc)
            return None
        source = getattr(event, "source", None)
        content = source.get("content") if isinstance(source, dict) else None
        relation = content.get("m.relates_to") if isinstance(content, dict) else None
        if isinstance(relation, dict) and relation.get("rel_type") == "m.thread":
            root = relation.get("event_id")
            return root if isinstance(root, str) else None
        return None

    async def _reply_for(self, handle: CommandHandler, item: InboxItem) -> Reply | None:
        text = item.text
        if item.kind == "reaction":
            proposal = await self._confirmations.by_message(item.text)
            if proposal is None:
                return None  # a ✅ on something that is not one of our confirmations
            text = f"yes {proposal.token}"
        elif item.kind == "answer":
            proposal = await self._confirmations.get(text.split()[1])
            if (
                proposal is None
                or proposal.state != "pending"
                or proposal.conversation != f"{PLATFORM}:{item.room}"
            ):
                return None  # room talk that only looks like an answer
        room = self._client.rooms.get(item.room)
        user = User(f"{PLATFORM}:{item.sender}", room.user_name(item.sender) if room else None)
        command = Command(
            user=user,
            conversation=Conversation(PLATFORM, item.room, item.thread, item.direct),
            text=text,
            message_id=item.reply_to,  # a reaction's work threads under the message reacted to
            sent_at=item.sent_at,
            prefix="" if item.direct else self._settings.prefix,
        )
        if not self._user_allowed(item.sender):
            await self._audit_refusal(command, "denied", "not in matrix.allowed_users")
            return Reply.error("You are not on this bot's list of Matrix users; ask its admin to add you.")
        age = (self._clock.now() - item.sent_at).total_seconds()
        if age > self._stale_after and (item.kind == "reaction" or self._mutating(text)):
            limit = f"{self._stale_after:.0f} s"
            detail = f"sent {age:.0f} s ago; host-changing commands older than {limit} are not run"
            await self._audit_refusal(command, "stale", detail)
            note = f"Ignored `{text[:80]}`: it was {detail}. Send it again if you still want it."
            return Reply(summary=note, blocks=(Text(note, Style.WARNING),), ok=False)
        return await handle(command)

    async def _audit_refusal(self, command: Command, outcome: str, detail: str) -> None:
        await self._audit.record(
            at=self._clock.now(),
            user_id=command.user.id,
            conversation=command.conversation.key,
            text=command.text[:500],
            command=command.text.split(maxsplit=1)[0] if command.text.split() else None,
            outcome=outcome,
            detail=detail,
        )

    async def _answer_with(self, item: InboxItem, reply: Reply) -> None:
        thread = item.thread or (item.reply_to if reply.in_thread else None)
        content = reply_content(reply, prefix=self._settings.prefix, reply_to=item.reply_to, thread=thread)
        event_id = await self._send_content(item.room, content, transaction_id("reply", item.event_id))
        await self._remember_confirms(reply, event_id)

    # ---- sending ---------------------------------------------------------------------------------

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        """Post ``reply``; a stable ``key`` (the outbox row) is the transaction id: a resend is a no-op."""
        content = reply_content(reply, prefix=self._settings.prefix, thread=thread)
        event_id = await self._deliver(room, content, key or uuid.uuid4().hex)
        await self._remember_confirms(reply, event_id)
        return event_id

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        await self._deliver(
            room, edit_content(reply, message_id, prefix=self._settings.prefix), uuid.uuid4().hex
        )

    async def _deliver(self, room: str, content: dict[str, Any], txn_id: str) -> str:
        try:
            async with asyncio.timeout(self._max_rate_wait):
                await self._ready.wait()
            return await self._send_content(room, content, txn_id)
        except MatrixRateLimited as exc:
            raise DeliveryError(str(exc), retry_after=exc.retry_after) from exc
        except MatrixError as exc:
            raise DeliveryError(str(exc), permanent=exc.code in _PERMANENT) from exc
        except (OSError, TimeoutError) as exc:
            raise DeliveryError(f"matrix: {exc!r}") from exc

    async def _send_content(self, room: str, content: dict[str, Any], txn_id: str) -> str:
        """Send one event, waiting out ``M_LIMIT_EXCEEDED`` up to ``max_rate_wait`` seconds in total.

        One send at a time per room: keeps the room's order and stops a herd of retries after a 429.
        """
        async with self._room_locks.setdefault(room, asyncio.Lock()):
            return await self._send_waiting(room, content, txn_id)

    async def _send_waiting(self, room: str, content: dict[str, Any], txn_id: str) -> str:
        waited = 0.0
        while True:
            try:
                response = checked(
                    await self._client.room_send(room, "m.room.message", content, tx_id=txn_id),
                    f"send to {room}",
                )
                return str(response.event_id)
            except MatrixRateLimited as exc:
                wait = exc.retry_after or 1.0
                if waited + wait > self._max_rate_wait:
                    raise
                log.info("matrix: rate limited in %s, waiting %.2f s", room, wait)
                waited += wait
                await self._clock.sleep(wait)

    async def _remember_confirms(self, reply: Reply, event_id: str) -> None:
        for block in reply.blocks:
            if isinstance(block, Confirm):
                await self._confirmations.attach_message(block.token, event_id)

    def health(self) -> TransportHealth:
        age = None if self._last_sync is None else self._clock.monotonic() - self._last_sync
        alive = age is not None and age < self._sync_timeout + 60 and self._ready.is_set()
        return TransportHealth(PLATFORM, alive, age, self._session.detail)
