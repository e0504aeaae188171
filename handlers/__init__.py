"""Chat commands. Every spec is listed here explicitly: this list is the bot's whole vocabulary."""

from __future__ import annotations

from bot.commands import CommandSpec
from handlers.audit import audit
from handlers.confirm import no, yes
from handlers.help import help_
from handlers.hosts import check, hosts

ALL: tuple[CommandSpec, ...] = (
    help_,
    hosts,
    check,
    audit,
    yes,
    no,
)
