"""A lying BMC against the real Redfish client: links and redirects elsewhere are refused, not followed.

The lying BMC answers its own resources correctly but points its links (``Members``, an action
``target``, the session ``Location``) and redirects at a second server, the thief, which records
every request. The thief must never see one: neither the Basic credentials nor the session token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.actions.bmc import BmcConfig, SecretRef
from bot.actions.redfish import MAX_BODY, ErrorKind, RedfishClient, RedfishError, ResetType

PW_VAR = "ESXBOT_TEST_HOSTILE_BMC_PW"
SYSTEM = "/redfish/v1/Systems/1"


@dataclass
class Server:
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers


@contextlib.asynccontextmanager
async def _serve(handler: Callable[[web.Request], Any]) -> AsyncIterator[Server]:
    server = Server()

    async def record(request: web.Request) -> web.StreamResponse:
        server.requests.append((request.method, request.path, dict(request.headers)))
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()


async def _thief_answer(_: web.Request) -> web.Response:
    return web.json_response(
        {"Members": [], "PowerState": "On", "Id": "stolen"}, headers={"X-Auth-Token": "t"}
    )


def _lying_bmc(thief: Server, lie: str, *, sessions: bool = False) -> Callable[[web.Request], Any]:
    async def answer(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/redfish/v1/":
            root: dict[str, Any] = {"Systems": {"@odata.id": "/redfish/v1/Systems"}}
            if sessions:
                root["Links"] = {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
            return web.json_response(root)
        if path == "/redfish/v1/SessionService/Sessions" and request.method == "POST":
            location = f"{thief.url}/redfish/v1/SessionService/Sessions/1"
            return web.json_response(
                {}, status=201, headers={"X-Auth-Token": "tok-123", "Location": location}
            )
        if path == "/redfish/v1/Systems":
            if lie == "redirect":
                raise web.HTTPFound(f"{thief.url}/redfish/v1/Systems")
            if lie == "local-redirect":
                raise web.HTTPFound("/redfish/v1/Systems/")
            member = f"{thief.url}{SYSTEM}" if lie == "member" else SYSTEM
            if lie == "scheme-relative":
                member = f"//{thief.url.removeprefix('http://')}{SYSTEM}"
            return web.json_response({"Members": [{"@odata.id": member}]})
        if path == "/redfish/v1/Systems/":
            return web.json_response({"Members": [{"@odata.id": SYSTEM}]})
        if path == SYSTEM and request.method == "GET":
            if lie == "huge":
                return web.Response(body=b" " * (MAX_BODY + 1), content_type="application/json")
            target = f"{thief.url}{SYSTEM}/Actions/ComputerSystem.Reset" if lie == "target" else None
            action = {"target": target or f"{SYSTEM}/Actions/ComputerSystem.Reset"}
            return web.json_response(
                {"Id": "1", "PowerState": "Off", "Actions": {"#ComputerSystem.Reset": action}}
            )
        return web.json_response({}, status=204 if request.method == "POST" else 404)

    return answer


def _client(url: str) -> RedfishClient:
    config = BmcConfig("liar", url, "esxbot", SecretRef.parse(f"env:{PW_VAR}"), timeout=5)
    return RedfishClient(config, poll_interval=0.05)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_VAR, "s3cret-bmc-password")


@pytest.mark.parametrize("lie", ["member", "scheme-relative", "redirect", "target"])
async def test_links_and_redirects_to_another_host_are_refused_naming_the_url(lie: str) -> None:
    async with (
        _serve(_thief_answer) as thief,
        _serve(_lying_bmc(thief, lie)) as bmc,
        _client(bmc.url) as client,
    ):
        with pytest.raises(RedfishError) as refused:
            await client.reset(ResetType.ON)
    assert refused.value.kind is ErrorKind.PROTOCOL
    assert f"refusing to follow {thief.url}/redfish/v1/" in str(refused.value)
    assert thief.requests == []


async def test_the_session_token_never_goes_to_a_foreign_session_location(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        _serve(_thief_answer) as thief,
        _serve(_lying_bmc(thief, "", sessions=True)) as bmc,
        _client(bmc.url) as client,
    ):
        await client.reset(ResetType.ON)
    assert thief.requests == []
    assert "could not delete the session" in caplog.text and "refusing to follow" in caplog.text
    posts = [h for m, p, h in bmc.requests if m == "POST" and p.endswith("ComputerSystem.Reset")]
    assert [h.get("X-Auth-Token") for h in posts] == ["tok-123"]


async def test_a_redirect_on_the_same_bmc_is_followed() -> None:
    async with (
        _serve(_thief_answer) as thief,
        _serve(_lying_bmc(thief, "local-redirect")) as bmc,
        _client(bmc.url) as client,
    ):
        system = await client.system()
    assert system.id == "1" and thief.requests == []


async def test_an_endless_answer_is_cut_at_the_bound() -> None:
    async with (
        _serve(_thief_answer) as thief,
        _serve(_lying_bmc(thief, "huge")) as bmc,
        _client(bmc.url) as client,
    ):
        with pytest.raises(RedfishError, match=f"answer longer than {MAX_BODY} bytes"):
            await client.system()
