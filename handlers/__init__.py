"""Chat commands. Every spec is listed here explicitly: this list is the bot's whole vocabulary."""

from __future__ import annotations

from bot.command.spec import CommandSpec
from handlers.advisories import advisories, cve, vmsa
from handlers.alerts import ack, alerts, oncall, resolve, silence, silences, unsilence
from handlers.audit import audit
from handlers.confirm import no, yes
from handlers.help import help_
from handlers.hosts import check, hosts
from handlers.jobs import cancel, job, jobs
from handlers.more import more
from handlers.outbox import outbox
from handlers.patch import patch
from handlers.power import maintenance, power, reboot, shutdown
from handlers.releases import affected, fixes, pr, release, releases
from handlers.sources import sources
from handlers.subscriptions import subscribe, subscriptions, unsubscribe

ALL: tuple[CommandSpec, ...] = (
    help_,
    hosts,
    check,
    releases,
    fixes,
    pr,
    affected,
    release,
    sources,
    subscribe,
    unsubscribe,
    subscriptions,
    alerts,
    ack,
    resolve,
    silence,
    unsilence,
    silences,
    oncall,
    patch,
    shutdown,
    reboot,
    power,
    maintenance,
    jobs,
    job,
    cancel,
    audit,
    outbox,
    more,
    yes,
    no,
    advisories,
    vmsa,
    cve,
)
