"""vSphere Lifecycle Manager (vLCM) for image-managed clusters, over the vCenter REST API.

``Lifecycle.remediate`` does what the vSphere Client's "Remediate" does, with the documented
vSphere Automation endpoints: log in (``POST /api/session``, basic auth → ``vmware-api-session-id``),
resolve the cluster and host identifiers by name (``GET /api/vcenter/cluster|host?names=``), find the
depot base image whose version ends with the target build
(``GET /api/esx/settings/depot-content/base-images``), set it as the cluster's desired image through a
draft (``POST …/software/drafts``, ``PUT …/drafts/{draft}/software/base-image``,
``POST …/drafts/{draft}?action=commit``), then ``POST …/software?action=apply&vmw-task=true`` and poll
``GET /api/cis/tasks/{task}`` until it ends or the limit passes. vLCM itself enters and exits
maintenance mode and reboots the hosts. Every identifier placed in a URL path comes from vCenter and is
checked against a strict pattern first; names only ever travel as query parameters.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.vsphere.host_ops import ActionError
from bot.vsphere.session import Endpoint, ssl_context

Progress = Callable[[str], Awaitable[None]]

_CLUSTER_ID = re.compile(r"^domain-c\d{1,9}$")
_HOST_ID = re.compile(r"^host-\d{1,9}$")
_OPAQUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # drafts, commits, tasks
_BASE_IMAGE = re.compile(r"^\d+\.\d+\.\d+-[0-9][0-9.]{0,40}$")
_DONE = frozenset({"SUCCEEDED", "FAILED"})


def _checked(pattern: re.Pattern[str], value: Any, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ActionError(f"vCenter returned an unexpected {what} identifier")
    return value


def _error_text(body: Any) -> str:
    """The first default_message of a vAPI error structure (``{"error_type", "messages": [...]}``)."""
    if isinstance(body, Mapping):
        for message in body.get("messages") or ():
            if isinstance(message, Mapping) and message.get("default_message"):
                return str(message["default_message"])[:300]
        if body.get("error_type"):
            return str(body["error_type"])
    return "no details"


class Lifecycle:
    """vLCM remediation on one vCenter; an ``aiohttp`` session per call of ``remediate``."""

    def __init__(self, endpoint: Endpoint, clock: Clock, *, poll: float = 5.0, base_url: str = "") -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._poll = poll
        self._base = base_url.rstrip("/") or f"https://{endpoint.host}:{endpoint.port}"
        self._token: str | None = None

    async def remediate(
        self, cluster: str, hosts: Sequence[str], *, build: int, limit: float, progress: Progress
    ) -> str:
        """Set the cluster image to ``build`` and apply it to ``hosts``; the outcome sentence."""
        timeout = aiohttp.ClientTimeout(total=self._endpoint.timeout)
        connector = aiohttp.TCPConnector(ssl=self._ssl())
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await self._login(http)
            try:
                return await self._remediate(http, cluster, hosts, build, limit, progress)
            finally:
                await self._logout(http)

    def _ssl(self) -> Any:
        context = ssl_context(self._endpoint)
        pin = self._endpoint.pin
        if pin and not self._endpoint.insecure:
            return aiohttp.Fingerprint(bytes.fromhex(pin))
        return context

    async def _login(self, http: aiohttp.ClientSession) -> None:
        pair = f"{self._endpoint.user}:{self._endpoint.password}".encode()
        auth = {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        try:
            async with http.post(f"{self._base}/api/session", headers=auth) as resp:
                if resp.status != 201 and resp.status != 200:
                    raise ActionError(f"vCenter REST login refused (HTTP {resp.status})")
                token = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActionError(f"vCenter REST API unreachable: {type(exc).__name__}") from None
        if not isinstance(token, str) or not token:
            raise ActionError("vCenter REST login gave no session id")
        self._token = token

    async def _logout(self, http: aiohttp.ClientSession) -> None:
        try:
            async with http.delete(f"{self._base}/api/session", headers=self._headers()):
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass  # the session expires on its own
        self._token = None

    def _headers(self) -> dict[str, str]:
        return {"vmware-api-session-id": self._token or ""}

    async def _call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        try:
            async with http.request(
                method, f"{self._base}{path}", params=params, json=body, headers=self._headers()
            ) as resp:
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
                if resp.status >= 400:
                    raise ActionError(
                        f"vLCM {method} {path} failed (HTTP {resp.status}): {_error_text(data)}"
                    )
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActionError(f"vLCM {method} {path}: {type(exc).__name__}") from None

    async def _ids(
        self, http: aiohttp.ClientSession, cluster: str, hosts: Sequence[str]
    ) -> tuple[str, list[str]]:
        found = await self._call(http, "GET", "/api/vcenter/cluster", params={"names": cluster})
        if not isinstance(found, list) or len(found) != 1:
            raise ActionError(f"vCenter has no single cluster named {cluster}")
        cluster_id = _checked(_CLUSTER_ID, found[0].get("cluster"), "cluster")
        host_ids = []
        for name in hosts:
            rows = await self._call(http, "GET", "/api/vcenter/host", params={"names": name})
            if not isinstance(rows, list) or len(rows) != 1:
                raise ActionError(f"vCenter has no single host named {name}")
            host_ids.append(_checked(_HOST_ID, rows[0].get("host"), "host"))
        return cluster_id, host_ids

    async def _base_image(self, http: aiohttp.ClientSession, build: int) -> str:
        images = await self._call(http, "GET", "/api/esx/settings/depot-content/base-images")
        for image in images if isinstance(images, list) else ():
            version = image.get("version") if isinstance(image, Mapping) else None
            if isinstance(version, str) and _BASE_IMAGE.fullmatch(version) and version.endswith(f".{build}"):
                return version
        raise ActionError(f"the vLCM depot has no ESXi base image for build {build}")

    async def _remediate(
        self,
        http: aiohttp.ClientSession,
        cluster: str,
        hosts: Sequence[str],
        build: int,
        limit: float,
        progress: Progress,
    ) -> str:
        cluster_id, host_ids = await self._ids(http, cluster, hosts)
        version = await self._base_image(http, build)
        software = f"/api/esx/settings/clusters/{cluster_id}/software"
        draft = _checked(_OPAQUE_ID, await self._call(http, "POST", f"{software}/drafts"), "draft")
        await self._call(
            http, "PUT", f"{software}/drafts/{draft}/software/base-image", body={"version": version}
        )
        commit = await self._call(
            http,
            "POST",
            f"{software}/drafts/{draft}",
            params={"action": "commit"},
            body={"message": f"esxbot: ESXi base image {version}"},
        )
        commit_id = _checked(_OPAQUE_ID, commit, "commit")
        await progress(f"vLCM: desired image of {cluster} set to base image {version} (commit {commit_id})")
        task = await self._call(
            http,
            "POST",
            software,
            params={"action": "apply", "vmw-task": "true"},
            body={"commit": commit_id, "hosts": host_ids, "accept_eula": True},
        )
        task_id = _checked(_OPAQUE_ID, task, "task")
        info = await self._wait(http, task_id, limit, progress)
        result = info.get("result")
        failed = result.get("failed_hosts") if isinstance(result, Mapping) else None
        if failed:
            raise ActionError(
                f"vLCM remediation ended with failed hosts: {', '.join(map(str, failed))[:200]}"
            )
        return f"vLCM applied base image {version} to {len(host_ids)} host(s) of {cluster} ({_summary(info)})"

    async def _wait(self, http: aiohttp.ClientSession, task: str, limit: float, progress: Progress) -> Any:
        deadline = self._clock.monotonic() + limit
        said = ""
        while True:
            info = await self._call(http, "GET", f"/api/cis/tasks/{task}")
            if not isinstance(info, Mapping):
                raise ActionError("vCenter returned an unreadable task")
            status = str(info.get("status", ""))
            line = _progress_line(info)
            if line and line != said:
                said = line
                await progress(f"vLCM task {task}: {line}")
            if status == "SUCCEEDED":
                return info
            if status == "FAILED":
                raise ActionError(f"vLCM remediation failed: {_error_text(info.get('error'))}")
            if status not in ("PENDING", "RUNNING", "BLOCKED") and status not in _DONE:
                raise ActionError(f"vLCM task {task} in unknown state {status[:20]}")
            if self._clock.monotonic() >= deadline:
                raise ActionError(
                    f"vLCM remediation did not finish within {limit:g} s (task {task} {status})"
                )
            await self._clock.sleep(self._poll)


def _progress_line(info: Mapping[str, Any]) -> str:
    prog = info.get("progress")
    if not isinstance(prog, Mapping):
        return str(info.get("status", ""))
    total, done = prog.get("total") or 0, prog.get("completed") or 0
    message = prog.get("message")
    text = message.get("default_message", "") if isinstance(message, Mapping) else ""
    percent = f"{100 * int(done) // int(total)}%" if isinstance(total, int) and total > 0 else ""
    return " ".join(p for p in (percent, str(text)[:200]) if p)


def _summary(info: Mapping[str, Any]) -> str:
    result = info.get("result")
    if isinstance(result, Mapping):
        ok = result.get("successful_hosts") or []
        skipped = result.get("skipped_hosts") or []
        if isinstance(ok, list) and isinstance(skipped, list):
            return f"{len(ok)} succeeded, {len(skipped)} skipped"
    return "task succeeded"
