"""A small vCenter REST server with the vLCM endpoints esxbot uses, shaped as the vSphere Automation
API documents them (session, cluster/host lookup by name, depot base images, software drafts and
commit, ``software?action=apply&vmw-task=true``, ``/api/cis/tasks/{task}``).

On apply it runs ``remediate(host_names)`` in the background (the test makes it drive vcsimlab:
maintenance mode, patch, reboot, exit) and reports the task RUNNING with progress until that ends,
then SUCCEEDED with an ApplyResult, or FAILED with a vAPI error when ``fail_with`` is set.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Remediate = Callable[[Sequence[str]], Awaitable[None]]
TOKEN = "vmware-api-session-7f3a"


@dataclass
class FakeVlcm:
    user: str
    password: str
    clusters: dict[str, str]  # name → domain-cN
    hosts: dict[str, str]  # name → host-N
    base_images: list[str]
    remediate: Remediate | None = None
    fail_with: str | None = None
    hang: bool = False
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    desired: dict[str, str] = field(default_factory=dict)  # cluster id → committed base image
    _drafts: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _running: list[asyncio.Task[None]] = field(default_factory=list)
    url: str = ""

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("vmware-api-session-id") == TOKEN

    @staticmethod
    def _error(status: int, kind: str, text: str) -> web.Response:
        body = {"error_type": kind, "messages": [{"id": f"fake.{kind.lower()}", "default_message": text}]}
        return web.json_response(body, status=status)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, request.path_qs, body))
        if request.path != "/api/session" and not self._authorized(request):
            return self._error(401, "UNAUTHENTICATED", "no valid session")
        response: web.StreamResponse = await handler(request)
        return response

    async def login(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.method == "DELETE":
            return web.Response(status=204)
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._error(401, "UNAUTHENTICATED", "bad credentials")
        return web.json_response(TOKEN, status=201)

    async def clusters_by_name(self, request: web.Request) -> web.Response:
        name = request.query.get("names", "")
        cid = self.clusters.get(name)
        rows = [{"cluster": cid, "name": name, "drs_enabled": True, "ha_enabled": False}] if cid else []
        return web.json_response(rows)

    async def hosts_by_name(self, request: web.Request) -> web.Response:
        name = request.query.get("names", "")
        if name not in self.hosts:
            return web.json_response([])
        row = {
            "host": self.hosts[name],
            "name": name,
            "connection_state": "CONNECTED",
            "power_state": "POWERED_ON",
        }
        return web.json_response([row])

    async def depot_base_images(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{"version": v, "display_name": "ESXi", "display_version": v, "kb": ""} for v in self.base_images]
        )

    async def drafts(self, request: web.Request) -> web.Response:
        cluster = request.match_info["cluster"]
        if cluster not in self.clusters.values():
            return self._error(404, "NOT_FOUND", f"no cluster {cluster}")
        draft = str(next(self._ids))
        self._drafts[draft] = (cluster, None)
        return web.json_response(draft)

    async def draft_base_image(self, request: web.Request) -> web.Response:
        draft = request.match_info["draft"]
        version = (await request.json()).get("version")
        if draft not in self._drafts or version not in self.base_images:
            return self._error(400, "INVALID_ARGUMENT", f"unknown base image {version}")
        self._drafts[draft] = (self._drafts[draft][0], version)
        return web.Response(status=204)

    async def draft_action(self, request: web.Request) -> web.Response:
        draft = request.match_info["draft"]
        if request.query.get("action") != "commit" or draft not in self._drafts:
            return self._error(400, "INVALID_ARGUMENT", "unsupported draft action")
        cluster, version = self._drafts.pop(draft)
        if version is None:
            return self._error(400, "INVALID_ARGUMENT", "the draft changes nothing")
        self.desired[cluster] = version
        return web.json_response(f"commit-{next(self._ids)}")

    async def software(self, request: web.Request) -> web.Response:
        if request.query.get("action") != "apply" or request.query.get("vmw-task") != "true":
            return self._error(400, "INVALID_ARGUMENT", "only action=apply&vmw-task=true is served")
        spec = await request.json()
        by_id = {v: k for k, v in self.hosts.items()}
        names = [by_id[h] for h in spec.get("hosts") or by_id if h in by_id]
        task_id = f"task-{next(self._ids)}:com.vmware.esx.settings.clusters.software"
        task: dict[str, Any] = {
            "status": "RUNNING",
            "cancelable": False,
            "progress": {"total": len(names), "completed": 0, "message": _msg("Remediating hosts")},
        }
        self._tasks[task_id] = task
        self._running.append(asyncio.create_task(self._apply(task, names, spec.get("hosts") or [])))
        return web.json_response(task_id)

    async def _apply(self, task: dict[str, Any], names: list[str], ids: list[str]) -> None:
        if self.hang:
            return
        if self.fail_with is not None:
            await asyncio.sleep(0.2)
            task["status"] = "FAILED"
            task["error"] = {"error_type": "ERROR", "messages": [_msg(self.fail_with)]}
            return
        for done, name in enumerate(names, start=1):
            task["progress"] = {
                "total": len(names),
                "completed": done - 1,
                "message": _msg(f"Remediating {name}"),
            }
            if self.remediate is not None:
                try:
                    await self.remediate([name])
                except Exception as exc:  # what the host said is the task's error, as vLCM reports it
                    task["status"] = "FAILED"
                    task["error"] = {"error_type": "ERROR", "messages": [_msg(f"{name}: {exc}")]}
                    return
        task["progress"] = {"total": len(names), "completed": len(names), "message": _msg("Done")}
        task["result"] = {
            "status": {"status": "OK"},
            "successful_hosts": ids,
            "failed_hosts": [],
            "skipped_hosts": [],
        }
        task["status"] = "SUCCEEDED"

    async def task_info(self, request: web.Request) -> web.Response:
        task = self._tasks.get(request.match_info["task"])
        if task is None:
            return self._error(404, "NOT_FOUND", "no such task")
        return web.json_response(task)


def _msg(text: str) -> dict[str, Any]:
    return {"id": "fake.message", "default_message": text, "args": []}


@asynccontextmanager
async def fake_vlcm(server: FakeVlcm) -> AsyncIterator[FakeVlcm]:
    app = web.Application(middlewares=[server._record])
    base = "/api/esx/settings/clusters/{cluster}/software"
    app.router.add_route("*", "/api/session", server.login)
    app.router.add_get("/api/vcenter/cluster", server.clusters_by_name)
    app.router.add_get("/api/vcenter/host", server.hosts_by_name)
    app.router.add_get("/api/esx/settings/depot-content/base-images", server.depot_base_images)
    app.router.add_post(f"{base}/drafts", server.drafts)
    app.router.add_put(f"{base}/drafts/{{draft}}/software/base-image", server.draft_base_image)
    app.router.add_post(f"{base}/drafts/{{draft}}", server.draft_action)
    app.router.add_post(base, server.software)
    app.router.add_get("/api/cis/tasks/{task}", server.task_info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        for task in server._running:
            task.cancel()
        await asyncio.gather(*server._running, return_exceptions=True)
        await runner.cleanup()
