"""The bot's HTTP face for orchestrators and Prometheus: ``/healthz``, ``/readyz``, ``/metrics`` (aiohttp).

``/healthz`` says the process answers. ``/readyz`` says it can do its job: the database answers,
every chat transport that holds a connection is connected and proved alive recently (a silently dead
Slack socket or Matrix sync turns it unready), every vCenter session is alive; it also names the role
(leader, follower, single). Outbound-only senders (pager webhooks) and inbound-HTTP transports (Slack
HTTP mode) are quiet by nature: they are reported in ``/healthz`` and the metrics, never in readiness,
so a quiet night cannot take the pod out of its Service. The checks' details (vCenter names, errors)
are shown to loopback clients only, unless ``details_for_all`` is set. A self-check loop evaluates
the transports every few seconds without posting anything, logs each change and feeds the metrics,
so a dead transport is visible even when nobody asks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from bot.chat.base import ChatAdapter, TransportHealth
from bot.clock import Clock, SystemClock
from bot.runtime.leader import Leadership
from bot.runtime.metrics import CONTENT_TYPE, Metrics
from bot.store.sql.base import Database

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]
OutboxStats = Callable[[float], Awaitable[tuple[int, float | None]]]
AlertCounts = Callable[[], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 9090
    stale_after: float = 30.0  # a transport silent for longer is unready
    # per-platform threshold; None: connection state only (the console is idle by nature)
    stale_overrides: Mapping[str, float | None] = field(default_factory=lambda: {"console": None})
    self_check_interval: float = 5.0
    # transports that run on the leader only (Matrix sync): not judged while this instance follows
    leader_only: frozenset[str] = frozenset()
    probe_timeout: float = 3.0
    details_for_all: bool = False  # show check details to non-loopback clients too


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    role: str  # leader, follower, single
    checks: tuple[Check, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "role": self.role,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


class Health:
    """Readiness checks, the transport self-check loop, and the metrics scrape."""

    def __init__(
        self,
        *,
        db: Database,
        adapters: Mapping[str, ChatAdapter],
        metrics: Metrics,
        vcenters: Mapping[str, Probe] | None = None,
        leadership: Leadership | None = None,
        outbox_stats: OutboxStats | None = None,
        alert_counts: AlertCounts | None = None,
        config: WebConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._adapters = adapters
        self.metrics = metrics
        self._vcenters = vcenters or {}
        self._leadership = leadership
        self._outbox_stats = outbox_stats
        self._alert_counts = alert_counts
        self.config = config or WebConfig()
        self._clock = clock or SystemClock()
        self._last_ready: dict[str, bool] = {}
        self._was_connected: dict[str, bool] = {}
        self._seen_reconnects: dict[str, int] = {}

    def role(self) -> str:
        if self._leadership is None:
            return "single"
        return "leader" if self._leadership.is_leader else "follower"

    def _judged(self) -> list[ChatAdapter]:
        follower = self.role() == "follower"
        return [
            a for a in self._adapters.values() if not (follower and a.platform in self.config.leader_only)
        ]

    def judge(self, health: TransportHealth) -> Check:
        """Connected, and (unless exempt) alive within the platform's staleness threshold."""
        name = f"chat:{health.platform}"
        limit = self.config.stale_overrides.get(health.platform, self.config.stale_after)
        if not health.holds_connection:
            limit = None
        if not health.connected:
            return Check(name, False, f"disconnected {health.detail}".strip())
        if limit is not None and (health.last_activity_age is None or health.last_activity_age > limit):
            age = "never" if health.last_activity_age is None else f"{health.last_activity_age:.0f}s ago"
            return Check(name, False, f"silent: last alive {age} (limit {limit:.0f}s)")
        return Check(name, True, health.detail)

    def quiet(self) -> list[Check]:
        """The transports that hold no connection (pager senders, Slack HTTP mode): not readiness."""
        healths = (adapter.health() for adapter in self._judged())
        return [self.judge(h) for h in healths if not h.holds_connection]

    async def _probe(self, name: str, probe: Callable[[], Awaitable[object]]) -> Check:
        try:
            async with asyncio.timeout(self.config.probe_timeout):
                result = await probe()
        except TimeoutError:
            return Check(name, False, f"no answer within {self.config.probe_timeout:.0f}s")
        except Exception as exc:
            return Check(name, False, f"{type(exc).__name__}: {exc}")
        return Check(name, result is not False, "" if result is not False else "session not alive")

    async def check(self) -> Readiness:
        checks = [await self._probe("database", lambda: self._db.fetchone("SELECT 1 AS ok"))]
        checks += [self.judge(h) for h in (a.health() for a in self._judged()) if h.holds_connection]
        checks += [await self._probe(f"vcenter:{n}", probe) for n, probe in self._vcenters.items()]
        ready = all(c.ok for c in checks)
        role = self.role()
        self.metrics.readiness(ready)
        self.metrics.role(role != "follower")
        return Readiness(ready, role, tuple(checks))

    def self_check_once(self) -> list[Check]:
        """Judge every transport; log changes, count reconnects, feed the metrics. Posts nothing."""
        results = []
        for adapter in self._judged():
            health = adapter.health()
            verdict = self.judge(health)
            platform = health.platform
            before = self._last_ready.get(platform)
            if before is not None and before != verdict.ok:
                level = logging.INFO if verdict.ok else logging.WARNING
                log.log(level, "chat transport %s is %s: %s", platform, "ready" if verdict.ok else "UNREADY",
                        verdict.detail)  # fmt: skip
            if health.reconnects is not None:  # the adapter's own count: short outages are not missed
                seen = self._seen_reconnects.get(platform, 0)
                for _ in range(health.reconnects - seen):
                    self.metrics.reconnect("chat", platform)
                self._seen_reconnects[platform] = max(seen, health.reconnects)
            elif health.connected and self._was_connected.get(platform) is False:
                self.metrics.reconnect("chat", platform)
            self._was_connected[platform] = health.connected
            self._last_ready[platform] = verdict.ok
            self.metrics.transport(health, verdict.ok)
            results.append(verdict)
        self.metrics.role(self.role() != "follower")
        return results

    async def self_check(self) -> None:
        while True:
            self.self_check_once()
            await self._clock.sleep(self.config.self_check_interval)

    async def scrape(self) -> bytes:
        now = self._clock.now().timestamp()
        outbox = alerts = None
        try:
            if self._outbox_stats is not None:
                outbox = await self._outbox_stats(now)
            if self._alert_counts is not None:
                alerts = await self._alert_counts()
        except Exception:
            log.exception("metrics: reading the database failed; serving the last values")
        self.metrics.refresh(outbox=outbox, alerts=alerts)
        self.self_check_once()
        return self.metrics.render()


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def make_app(health: Health) -> web.Application:
    def detailed(request: web.Request) -> bool:
        return health.config.details_for_all or _loopback(request)

    async def healthz(request: web.Request) -> web.Response:
        body: dict[str, object] = {"status": "ok"}
        if detailed(request):
            body["transports"] = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in health.quiet()]
        return web.json_response(body)

    async def readyz(request: web.Request) -> web.Response:
        readiness = await health.check()
        body = (
            readiness.to_dict() if detailed(request) else {"ready": readiness.ready, "role": readiness.role}
        )
        return web.json_response(body, status=200 if readiness.ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = await health.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    return app


async def serve(health: Health, *, ready: asyncio.Event | None = None) -> None:
    """Serve on ``health.config.host:port`` and run the self-check until cancelled."""
    runner = web.AppRunner(make_app(health), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, health.config.host, health.config.port)
        await site.start()
        log.info("health and metrics on http://%s:%d/", health.config.host, health.config.port)
        if ready is not None:
            ready.set()
        await health.self_check()
    finally:
        await runner.cleanup()
