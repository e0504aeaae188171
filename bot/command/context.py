"""``Context``: what a handler knows about the call (the command, the caller's role, the services)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.command.auth import Role
from bot.messages import Command, User

if TYPE_CHECKING:
    from bot.command.services import ConfirmGate, Services


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler knows about the call: the command, the caller's role, the services."""

    command: Command
    role: Role
    services: Services
    gate: ConfirmGate
    confirmed_by: User | None = None  # set when running after ``yes <token>``
    preview: bool = False  # True while building the confirmation preview
    approved: Mapping[str, Any] | None = None  # after ``yes``: the plan the preview showed

    @property
    def user(self) -> User:
        return self.command.user
