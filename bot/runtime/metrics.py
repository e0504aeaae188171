"""The bot's Prometheus metrics: one ``Metrics`` object, own registry, injected where things happen.

Modules record events through its small methods (``command``, ``source_poll``, ``syslog_line``, …);
values that live in the database (outbox depth, alerts by state) are read when ``/metrics`` is
scraped, through ``refresh``. Nothing here is global: two bots in one process do not share a series.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.chat.base import TransportHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._commands = Counter(
            "esxbot_commands",
            "Chat commands handled, by command and outcome",
            ["command", "outcome"],
            registry=r,
        )
        self._outbox_depth = Gauge("esxbot_outbox_pending", "Notifications not yet delivered", registry=r)
        self._outbox_age = Gauge(
            "esxbot_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered notification",
            registry=r,
        )
        self._outbox_failed = Counter(
            "esxbot_outbox_failed",
            "Notifications that failed for good (listed by the `outbox` command)",
            ["platform"],
            registry=r,
        )
        self._alerts = Gauge("esxbot_alerts", "Alerts by state", ["state"], registry=r)
        self._alert_states: set[str] = set()
        self._polls = Counter(
            "esxbot_source_polls",
            "Release source polls, by source and result",
            ["source", "result"],
            registry=r,
        )
        self._refresh = Histogram(
            "esxbot_inventory_refresh_seconds",
            "Duration of one inventory refresh",
            ["vcenter"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self._hosts = Gauge(
            "esxbot_inventory_hosts", "Hosts in the last inventory refresh", ["vcenter"], registry=r
        )
        self._syslog = Counter(
            "esxbot_syslog_lines", "Syslog lines, by result (received, dropped)", ["result"], registry=r
        )
        self._reconnects = Counter(
            "esxbot_reconnects",
            "Reconnects of a vCenter session or chat transport",
            ["kind", "name"],
            registry=r,
        )
        self._transport_ready = Gauge(
            "esxbot_chat_transport_ready", "1 when the chat transport is connected and recently alive",
            ["platform"], registry=r,
        )  # fmt: skip
        self._transport_age = Gauge(
            "esxbot_chat_transport_activity_age_seconds", "Seconds since the transport last proved alive",
            ["platform"], registry=r,
        )  # fmt: skip
        self._jobs = Counter(
            "esxbot_jobs",
            "Host-action jobs that ended, by kind and final state",
            ["kind", "state"],
            registry=r,
        )
        self._leader = Gauge("esxbot_leader", "1 while this instance is the leader", registry=r)
        self._ready = Gauge("esxbot_ready", "1 while /readyz answers ready", registry=r)

    def command(self, name: str, outcome: str) -> None:
        self._commands.labels(command=name or "-", outcome=outcome).inc()

    def outbox_failed(self, platform: str) -> None:
        self._outbox_failed.labels(platform=platform).inc()

    def source_poll(self, source: str, result: str) -> None:
        """``result``: ``ok``, ``not-modified``, ``error``."""
        self._polls.labels(source=source, result=result).inc()

    def inventory_refreshed(self, vcenter: str, seconds: float, hosts: int) -> None:
        self._refresh.labels(vcenter=vcenter).observe(seconds)
        self._hosts.labels(vcenter=vcenter).set(hosts)

    def syslog_line(self, *, dropped: bool = False, count: int = 1) -> None:
        self._syslog.labels(result="dropped" if dropped else "received").inc(count)

    def reconnect(self, kind: str, name: str) -> None:
        """``kind``: ``vcenter`` or ``chat``."""
        self._reconnects.labels(kind=kind, name=name).inc()

    def transport(self, health: TransportHealth, ready: bool) -> None:
        self._transport_ready.labels(platform=health.platform).set(1 if ready else 0)
        if health.last_activity_age is not None:
            self._transport_age.labels(platform=health.platform).set(health.last_activity_age)

    def job(self, kind: str, state: str) -> None:
        self._jobs.labels(kind=kind, state=state).inc()

    def role(self, leader: bool) -> None:
        self._leader.set(1 if leader else 0)

    def readiness(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def refresh(
        self, *, outbox: tuple[int, float | None] | None = None, alerts: Mapping[str, int] | None = None
    ) -> None:
        """Values read from the database at scrape time."""
        if outbox is not None:
            depth, age = outbox
            self._outbox_depth.set(depth)
            self._outbox_age.set(age or 0.0)
        if alerts is not None:
            self._alert_states |= set(alerts)
            for state in self._alert_states:
                self._alerts.labels(state=state).set(alerts.get(state, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
