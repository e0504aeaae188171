"""The contract every chat adapter (console, Slack, Matrix) fulfils.

An adapter turns platform messages into ``Command`` values, hands them to the dispatcher, and
renders ``Reply`` values back. It also delivers outbox notifications: ``send`` returns the platform's
message id (Slack ``ts``, Matrix event id) so later updates can ``edit`` the same message in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.messages import Command, Reply

CommandHandler = Callable[[Command], Awaitable[Reply]]


class DeliveryError(Exception):
    """Sending failed. ``retry_after`` (seconds) is set when the platform asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class TransportHealth:
    """Liveness of one adapter's connection, for ``/readyz`` and ``check``."""

    platform: str
    connected: bool
    last_activity_age: float | None  # seconds since the transport last proved it is alive
    detail: str = ""
    reconnects: int | None = None  # new connections since the first, when the adapter counts them
    # False for outbound-only senders (pager webhooks) and inbound-HTTP transports (Slack HTTP mode):
    # silence is normal for them and they cannot make the instance unready
    holds_connection: bool = True


class ChatAdapter(Protocol):
    platform: str

    async def run(self, handle: CommandHandler) -> None:
        """Receive commands until cancelled; answer each with ``await handle(command)``."""

    async def send(
        self, room: str, reply: Reply, *, thread: str | None = None, key: str | None = None
    ) -> str:
        """Post a new message; return its platform message id. Raises ``DeliveryError``.

        ``key`` is stable across retries of the same notification; platforms with idempotent sends
        (Matrix transaction ids) use it so a resend after a crash does not post twice.
        """

    async def edit(self, room: str, message_id: str, reply: Reply) -> None:
        """Replace the content of a message we sent earlier. Raises ``DeliveryError``."""

    def health(self) -> TransportHealth:
        """Current transport liveness (cheap, no I/O)."""
