"""A Redfish BMC for the simulated hosts, served on 127.0.0.1 and driven by the real ``RedfishClient``.

One endpoint serves every demo host that has a BMC: ``/redfish/v1/Systems/<short name>`` with the
host's serial number, so the client finds its system the way it does on a shared chassis manager.
It speaks the part of Redfish the power steps use: the service root, session login and logout
(X-Auth-Token), the system with its ``PowerState`` and ``ComputerSystem.Reset`` (On, ForceOff,
GracefulShutdown, ForceRestart, GracefulRestart). A hung host (lost boot device) accepts
GracefulShutdown and ignores it, as a real BMC does when the OS does not answer the ACPI request,
so the runner's ForceOff fallback runs. The login password is random per run, in a private file
that ``BmcConfig`` refers to (``file:``), as a configured BMC's password would be.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.actions.bmc import BmcDirectory
from bot.demo.fleet import DemoFleet, SimHost

log = logging.getLogger(__name__)

ROOT = "/redfish/v1/"
SYSTEMS = "/redfish/v1/Systems"
SESSIONS = "/redfish/v1/SessionService/Sessions"
RESETS = ("On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart")
USER = "demo"
DEMO_BMC_CLUSTERS = ("homelab",)  # the home lab's Supermicro boards have BMCs in the demo


class DemoBmc:
    """The Redfish endpoint; ``directory()`` is the ``BmcDirectory`` the job runner uses."""

    def __init__(self, fleet: DemoFleet, *, step: float) -> None:
        self._fleet = fleet
        self._step = step
        self._tokens: dict[str, str] = {}  # session id -> token
        self._sock = socket.create_server(("127.0.0.1", 0))  # bound now so the URL is known up front
        self._sock.setblocking(False)
        self.port = int(self._sock.getsockname()[1])
        self._password = secrets.token_urlsafe(18)
        self._dir = tempfile.TemporaryDirectory(prefix="esxbot-demo-bmc-")
        self._secret = Path(self._dir.name) / "password"
        self._secret.touch(mode=0o600)
        self._secret.write_text(self._password, encoding="utf-8")
        self._runner: web.AppRunner | None = None

    def hosts(self) -> list[SimHost]:
        return [h for h in self._fleet.state.hosts.values() if h.cluster in DEMO_BMC_CLUSTERS]

    def directory(self) -> BmcDirectory:
        return BmcDirectory.from_mappings(
            {
                "name": f"{h.name.split('.', 1)[0]}-bmc",
                "url": f"http://127.0.0.1:{self.port}",
                "username": USER,
                "password": f"file:{self._secret}",
                "host": h.name,
                "serial": self._fleet.serial(h.name),
            }
            for h in self.hosts()
        )

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get(ROOT, self._root)
        app.router.add_get("/redfish/v1", self._root)
        app.router.add_post(SESSIONS, self._login)
        app.router.add_delete(SESSIONS + "/{id}", self._logout)
        app.router.add_get(SYSTEMS, self._systems)
        app.router.add_get(SYSTEMS + "/{id}", self._system)
        app.router.add_post(SYSTEMS + "/{id}/Actions/ComputerSystem.Reset", self._reset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        log.info("demo: Redfish BMC for %d simulated host(s) on 127.0.0.1:%d", len(self.hosts()), self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        else:
            self._sock.close()
        self._dir.cleanup()

    # --- HTTP -----------------------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        open_paths = (request.path in (ROOT, "/redfish/v1")) or (
            request.method == "POST" and request.path == SESSIONS
        )
        if not open_paths and request.headers.get("X-Auth-Token") not in self._tokens.values():
            return _error(401, "Base.1.8.NoValidSession", "There is no valid session established.")
        return await handler(request)

    async def _root(self, request: web.Request) -> web.Response:
        return _json(
            {
                "@odata.id": ROOT,
                "Id": "RootService",
                "Name": "esxbot demo BMC",
                "RedfishVersion": "1.6.0",
                "Systems": {"@odata.id": SYSTEMS},
                "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
                "Links": {"Sessions": {"@odata.id": SESSIONS}},
            }
        )

    async def _login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Base.1.8.MalformedJSON", "The request body is not JSON.")
        ok = isinstance(body, dict) and body.get("UserName") == USER
        if not ok or not secrets.compare_digest(str(body.get("Password", "")), self._password):
            return _error(401, "Base.1.8.InsufficientPrivilege", "Invalid user name or password.")
        sid, token = secrets.token_hex(4), secrets.token_urlsafe(24)
        self._tokens[sid] = token
        location = f"{SESSIONS}/{sid}"
        headers = {"X-Auth-Token": token, "Location": location}
        return _json({"@odata.id": location, "Id": sid, "UserName": USER}, status=201, headers=headers)

    async def _logout(self, request: web.Request) -> web.Response:
        if self._tokens.pop(request.match_info["id"], None) is None:
            return _error(404, "Base.1.8.ResourceMissingAtURI", "No such session.")
        return web.Response(status=204)

    async def _systems(self, request: web.Request) -> web.Response:
        members = [{"@odata.id": f"{SYSTEMS}/{_sid(h)}"} for h in self.hosts()]
        return _json({"@odata.id": SYSTEMS, "Members": members, "Members@odata.count": len(members)})

    def _find(self, request: web.Request) -> SimHost | None:
        wanted = request.match_info["id"]
        found = next((h for h in self.hosts() if _sid(h) == wanted), None)
        return self._fleet.host(found.name) if found else None

    async def _system(self, request: web.Request) -> web.Response:
        sim = self._find(request)
        if sim is None:
            return _error(404, "Base.1.8.ResourceMissingAtURI", "No such system.")
        path = f"{SYSTEMS}/{_sid(sim)}"
        return _json(
            {
                "@odata.id": path,
                "Id": _sid(sim),
                "Name": sim.name,
                "SerialNumber": self._fleet.serial(sim.name),
                "PowerState": "On" if sim.power == "poweredOn" else "Off",
                "Actions": {
                    "#ComputerSystem.Reset": {
                        "target": f"{path}/Actions/ComputerSystem.Reset",
                        "ResetType@Redfish.AllowableValues": list(RESETS),
                    }
                },
            }
        )

    async def _reset(self, request: web.Request) -> web.Response:
        sim = self._find(request)
        if sim is None:
            return _error(404, "Base.1.8.ResourceMissingAtURI", "No such system.")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Base.1.8.MalformedJSON", "The request body is not JSON.")
        kind = body.get("ResetType") if isinstance(body, dict) else None
        if kind not in RESETS:
            return _error(
                400, "Base.1.8.ActionParameterNotSupported", f"ResetType {str(kind)[:40]} is not supported."
            )
        self._apply(sim, str(kind))
        return web.Response(status=204)

    def _apply(self, sim: SimHost, kind: str) -> None:
        log.info("demo BMC: %s on %s", kind, sim.name)
        on = sim.power == "poweredOn"
        if kind == "On" and not on:
            sim.power = "poweredOn"
            self._fleet.schedule(sim, "boot", 2 * self._step)
        elif kind == "ForceOff" and on:
            self._fleet.power_off(sim)
            self._fleet.save()
        elif kind == "GracefulShutdown" and on and not sim.hung:
            self._fleet.schedule(sim, "off", self._step)
        elif kind in ("ForceRestart", "GracefulRestart") and (kind == "ForceRestart" or not sim.hung):
            self._fleet.schedule(sim, "boot", 2 * self._step)


def _sid(sim: SimHost) -> str:
    return sim.name.split(".", 1)[0]


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json(
        {"error": {"code": code, "message": message, "@Message.ExtendedInfo": [{"Message": message}]}},
        status=status,
    )
