"""Out-of-band power over DMTF Redfish: find a host's BMC, read its power state, reset it.

Used by the host-action jobs when vCenter has lost the host (the bootbank-loss case)::

    directory = bot.actions.bmc.BmcDirectory.from_mappings(settings_entries)
    bmc = directory.find(host_name="esx-01.lab", serial="CZ1234")  # BmcConfig | None
    async with RedfishClient(bmc, session=http) as client:  # session optional: owned if omitted
        system = await client.system()  # RedfishSystem: id, power_state, allowed_resets
        result = await client.graceful_then_force_off(graceful_timeout=300, force_timeout=60)
        result.path  # OffPath.GRACEFUL | FORCED_AFTER_TIMEOUT | FORCED_ONLY | ALREADY_OFF
        await client.reset(ResetType.ON)  # refused before sending if the BMC does not allow it
        await client.wait_for_power_state(PowerState.ON, timeout=300)

The password is a `bot.actions.bmc.SecretRef` (``env:VAR_NAME`` or ``file:/path``), resolved at ``open()``.
It never appears in a ``repr``, a log line or an error: every failure is one `RedfishError` whose
text is fit for chat and whose ``kind`` says what went wrong. Every request has a timeout. The client
logs in with a Redfish session (X-Auth-Token) when the service root offers one, else basic auth,
and deletes its session on close.

The BMC's answers are not trusted: a link (``@odata.id``, an action ``target``, a session
``Location``) or a redirect is followed only on the configured BMC's scheme, host and port, so the
credentials and the session token never go anywhere else; answers are read up to ``MAX_BODY`` bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import SplitResult, urljoin, urlsplit

import aiohttp

from bot.actions.bmc import BmcConfig

log = logging.getLogger(__name__)

SERVICE_ROOT = "/redfish/v1/"
DEFAULT_SESSIONS = "/redfish/v1/SessionService/Sessions"
RESET_ACTION = "#ComputerSystem.Reset"
MAX_BODY = 4 * 1024 * 1024  # bytes; a Redfish resource is a few KB
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_HOPS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ErrorKind(StrEnum):
    CONFIG = "config"
    AUTH = "auth"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    NOT_FOUND = "not-found"
    REFUSED = "refused"
    PROTOCOL = "protocol"


class RedfishError(Exception):
    """The one error of this module; ``str()`` is a chat-ready sentence without credentials."""

    def __init__(self, bmc: str, kind: ErrorKind, message: str) -> None:
        super().__init__(f"BMC {bmc}: {message}")
        self.bmc = bmc
        self.kind = kind
        self.detail = message


class PowerState(StrEnum):
    ON = "On"
    OFF = "Off"
    POWERING_ON = "PoweringOn"
    POWERING_OFF = "PoweringOff"
    PAUSED = "Paused"


class ResetType(StrEnum):
    ON = "On"
    FORCE_OFF = "ForceOff"
    GRACEFUL_SHUTDOWN = "GracefulShutdown"
    GRACEFUL_RESTART = "GracefulRestart"
    FORCE_RESTART = "ForceRestart"
    NMI = "Nmi"
    FORCE_ON = "ForceOn"
    PUSH_POWER_BUTTON = "PushPowerButton"
    POWER_CYCLE = "PowerCycle"
    FULL_POWER_CYCLE = "FullPowerCycle"
    SUSPEND = "Suspend"
    PAUSE = "Pause"
    RESUME = "Resume"


class OffPath(StrEnum):
    ALREADY_OFF = "already-off"
    GRACEFUL = "graceful"
    FORCED_AFTER_TIMEOUT = "forced-after-timeout"
    FORCED_ONLY = "forced-only"  # the BMC does not offer GracefulShutdown


@dataclass(frozen=True, slots=True)
class RedfishSystem:
    """One ComputerSystem as the BMC reports it; ``allowed_resets`` is None when not advertised."""

    path: str
    id: str
    name: str
    uuid: str | None
    serial: str | None
    sku: str | None
    power_state: PowerState
    allowed_resets: frozenset[ResetType] | None
    reset_target: str


@dataclass(frozen=True, slots=True)
class PowerOffResult:
    bmc: str
    system_id: str
    path: OffPath
    graceful_seconds: float  # time spent waiting for GracefulShutdown (0 when not sent)
    force_seconds: float | None  # time from ForceOff to Off (None when not sent)
    total_seconds: float


class _Redacted:
    """Holds a secret; its repr and str give nothing away."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class RedfishClient:
    """An open conversation with one BMC; use ``async with`` or ``open()`` / ``close()``."""

    def __init__(
        self,
        config: BmcConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self.config = config
        self._http = session
        self._owns_http = session is None
        self._poll = poll_interval
        self._base = config.url.rstrip("/")
        self._ssl: ssl.SSLContext | bool = True
        self._auth: dict[str, _Redacted] = {}
        self._password: _Redacted | None = None
        self._session_uri: str | None = None
        self._system_path: str | None = None

    def __repr__(self) -> str:
        return f"RedfishClient(bmc={self.config.name!r}, url={self._base!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _error(self, kind: ErrorKind, message: str) -> RedfishError:
        if self._password is not None:
            message = message.replace(self._password.value, "***")
        return RedfishError(self.config.name, kind, message)

    async def open(self) -> None:
        """Resolve the password, set up TLS and log in (session if offered, else basic auth)."""
        try:
            password = await asyncio.to_thread(self.config.password.resolve)
        except LookupError as exc:
            raise self._error(ErrorKind.CONFIG, f"password ({self.config.password}): {exc}") from None
        self._password = _Redacted(password)
        https, cafile = self._base.startswith("https:"), self.config.ca_file
        if https and not self.config.verify_tls:
            self._ssl = False
        elif https and cafile:
            try:
                self._ssl = await asyncio.to_thread(ssl.create_default_context, cafile=cafile)
            except (OSError, ssl.SSLError):
                raise self._error(ErrorKind.CONFIG, f"cannot load CA file {cafile}") from None
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            await self._login(password)
        except BaseException:
            await self.close()
            raise

    async def _login(self, password: str) -> None:
        try:
            _, root, _ = await self._request("GET", SERVICE_ROOT, auth=False)
        except RedfishError as exc:
            if exc.kind is not ErrorKind.AUTH:
                raise
            root = {}
        sessions = _dict(_dict(root.get("Links")).get("Sessions")).get("@odata.id")
        if not sessions and "SessionService" in root:
            sessions = DEFAULT_SESSIONS
        if isinstance(sessions, str):
            body = {"UserName": self.config.username, "Password": password}
            try:
                _, _, headers = await self._request("POST", sessions, body=body, auth=False)
            except RedfishError as exc:
                if exc.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
                    raise
                log.info("BMC %s: session login refused (%s), using basic auth", self.config.name, exc.detail)
            else:
                token = headers.get("X-Auth-Token")
                if token:
                    self._auth = {"X-Auth-Token": _Redacted(token)}
                    self._session_uri = headers.get("Location")
                    log.info("BMC %s: logged in with a Redfish session", self.config.name)
                    return
        basic = base64.b64encode(f"{self.config.username}:{password}".encode()).decode("ascii")
        self._auth = {"Authorization": _Redacted(f"Basic {basic}")}

    async def close(self) -> None:
        """Delete the Redfish session (best effort) and close the HTTP session if we own it."""
        if self._session_uri is not None and self._http is not None and not self._http.closed:
            try:
                await self._request("DELETE", self._session_uri)
            except RedfishError as exc:
                log.warning("BMC %s: could not delete the session: %s", self.config.name, exc)
        self._session_uri = None
        self._auth = {}
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None

    def _origin(self, parts: SplitResult) -> tuple[str, str, int | None]:
        scheme = parts.scheme.lower()
        try:
            port = parts.port or _DEFAULT_PORTS.get(scheme)
        except ValueError:
            port = -1  # an unparsable port matches nothing
        return scheme, (parts.hostname or "").lower(), port

    def _confine(self, link: str, base: str) -> str:
        """The absolute URL of ``link`` (relative to ``base``), refused unless it is on this BMC."""
        url = self._base + link if link.startswith("/") and not link.startswith("//") else urljoin(base, link)
        if self._origin(urlsplit(url)) != self._origin(urlsplit(self._base)):
            shown = url[:200]
            raise self._error(ErrorKind.PROTOCOL, f"refusing to follow {shown}: it is not on {self._base}")
        return url

    async def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, auth: bool = True
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        if self._http is None:
            raise self._error(ErrorKind.CONFIG, "client is not open")
        url = self._confine(path, self._base + "/")
        shown = urlsplit(url).path or path
        headers = {"Accept": "application/json", "OData-Version": "4.0"}
        if auth:
            headers.update({k: v.value for k, v in self._auth.items()})
        limit = aiohttp.ClientTimeout(total=self.config.timeout)
        for _ in range(_MAX_HOPS + 1):
            what = f"{method} {shown}"
            status, raw, resp_headers = await self._exchange(
                self._http, method, url, body, headers, limit, what
            )
            location = resp_headers.get("Location")
            if status not in _REDIRECTS or not location:
                break
            url = self._confine(location, url)
            shown = urlsplit(url).path
            if status == 303:
                method, body = "GET", None
        else:
            raise self._error(
                ErrorKind.PROTOCOL, f"more than {_MAX_HOPS} redirects for {method} {path[:200]}"
            )
        data = self._decode(raw, method, shown)
        if status in (401, 403):
            raise self._error(ErrorKind.AUTH, f"the BMC refused the configured credentials (HTTP {status})")
        if status == 404:
            raise self._error(ErrorKind.NOT_FOUND, f"{shown} does not exist on this BMC")
        if status >= 400:
            kind = ErrorKind.REFUSED if status < 500 or status == 501 else ErrorKind.PROTOCOL
            raise self._error(kind, f"{what} failed with HTTP {status}: {_message(data)}")
        return status, data, resp_headers

    async def _exchange(
        self,
        http: aiohttp.ClientSession,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        limit: aiohttp.ClientTimeout,
        what: str,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One HTTP request, redirects not followed, the answer read up to ``MAX_BODY`` bytes."""
        try:
            async with http.request(
                method, url, json=body, headers=headers, ssl=self._ssl, timeout=limit, allow_redirects=False
            ) as r:
                raw = bytearray()
                async for chunk in r.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_BODY:
                        raise self._error(ErrorKind.PROTOCOL, f"{what}: answer longer than {MAX_BODY} bytes")
                return r.status, bytes(raw), r.headers
        except TimeoutError:
            raise self._error(ErrorKind.TIMEOUT, f"no answer to {what} within {limit.total:g} s") from None
        except aiohttp.ClientConnectorCertificateError:
            raise self._error(ErrorKind.UNREACHABLE, "TLS certificate verification failed") from None
        except aiohttp.ClientConnectorError as exc:
            why = f"{exc.host}:{exc.port} ({exc.os_error.strerror or type(exc.os_error).__name__})"
            raise self._error(ErrorKind.UNREACHABLE, f"cannot connect to {why}") from None
        except aiohttp.ClientError as exc:
            raise self._error(ErrorKind.UNREACHABLE, f"{what} failed ({type(exc).__name__})") from None

    def _decode(self, raw: bytes, method: str, shown: str) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        if not isinstance(data, dict):
            raise self._error(ErrorKind.PROTOCOL, f"{method} {shown} did not return a JSON object")
        return data

    async def _get(self, path: str) -> dict[str, Any]:
        return (await self._request("GET", path))[1]

    async def _discover(self) -> str:
        members = (await self._get("/redfish/v1/Systems")).get("Members")
        paths = [
            m["@odata.id"]
            for m in _list(members)
            if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)
        ]
        if not paths:
            raise self._error(ErrorKind.NOT_FOUND, "the BMC lists no computer systems")
        wanted = self.config.serial
        if wanted is None:
            return str(paths[0])
        for path in paths:
            data = await self._get(path)
            keys = (data.get("SerialNumber"), data.get("SKU"), data.get("UUID"))
            if any(isinstance(k, str) and k.strip().casefold() == wanted.casefold() for k in keys):
                return str(path)
        raise self._error(ErrorKind.NOT_FOUND, f"none of its {len(paths)} systems has serial/UUID {wanted}")

    async def system(self) -> RedfishSystem:
        """The matched system, read now (discovered on first use)."""
        if self._system_path is None:
            self._system_path = await self._discover()
        data = await self._get(self._system_path)
        try:
            state = PowerState(str(data.get("PowerState")))
        except ValueError:
            raise self._error(ErrorKind.PROTOCOL, f"unknown power state {data.get('PowerState')!r}") from None
        action = _dict(_dict(data.get("Actions")).get(RESET_ACTION))
        target = action.get("target")
        if not isinstance(target, str) or not target:
            target = f"{self._system_path.rstrip('/')}/Actions/ComputerSystem.Reset"
        allowed = action.get("ResetType@Redfish.AllowableValues")
        info = action.get("@Redfish.ActionInfo")
        if allowed is None and isinstance(info, str):
            params = (await self._get(info)).get("Parameters")
            found = [p for p in _list(params) if isinstance(p, dict) and p.get("Name") == "ResetType"]
            allowed = found[0].get("AllowableValues") if found else None
        return RedfishSystem(
            path=self._system_path,
            id=str(data.get("Id", self._system_path.rsplit("/", 1)[-1])),
            name=str(data.get("Name", "")),
            uuid=_text(data.get("UUID")),
            serial=_text(data.get("SerialNumber")),
            sku=_text(data.get("SKU")),
            power_state=state,
            allowed_resets=None if not isinstance(allowed, list) else frozenset(_reset_types(allowed)),
            reset_target=str(target),
        )

    async def power_state(self) -> PowerState:
        return (await self.system()).power_state

    async def reset(self, reset_type: ResetType | str) -> None:
        """POST ComputerSystem.Reset; an unknown or not-allowed type is refused before sending."""
        await self._reset(await self.system(), reset_type)

    async def _reset(self, system: RedfishSystem, reset_type: ResetType | str) -> None:
        try:
            kind = ResetType(reset_type)
        except ValueError:
            raise self._error(ErrorKind.REFUSED, f"{reset_type!r} is not a Redfish reset type") from None
        if system.allowed_resets is not None and kind not in system.allowed_resets:
            offered = ", ".join(sorted(system.allowed_resets)) or "none"
            raise self._error(ErrorKind.REFUSED, f"{kind} is not allowed on {system.id} (allowed: {offered})")
        await self._request("POST", system.reset_target, body={"ResetType": kind.value})
        log.info("BMC %s: sent %s to system %s", self.config.name, kind, system.id)

    async def _wait(self, state: PowerState, limit: float) -> tuple[bool, float, PowerState]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            current = await self.power_state()
            elapsed = loop.time() - start
            if current is state or elapsed >= limit:
                return current is state, elapsed, current
            await asyncio.sleep(min(self._poll, limit - elapsed))

    async def wait_for_power_state(self, state: PowerState, timeout: float) -> float:  # noqa: ASYNC109
        """Poll until the system reports ``state``; returns the seconds waited.

        A deadline rather than ``asyncio.timeout`` so that running out ends in a `RedfishError`
        naming the last power state seen, which is what the operator needs to read.
        """
        reached, elapsed, current = await self._wait(state, timeout)
        if not reached:
            raise self._error(ErrorKind.TIMEOUT, f"still {current} after {timeout:g} s (waiting for {state})")
        return elapsed

    async def graceful_then_force_off(
        self, graceful_timeout: float, force_timeout: float = 60.0
    ) -> PowerOffResult:
        """GracefulShutdown, wait up to ``graceful_timeout``, then ForceOff and wait for Off."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        system = await self.system()

        def result(path: OffPath, graceful: float, force: float | None) -> PowerOffResult:
            return PowerOffResult(self.config.name, system.id, path, graceful, force, loop.time() - start)

        if system.power_state is PowerState.OFF:
            return result(OffPath.ALREADY_OFF, 0.0, None)
        graceful_offered = (
            system.allowed_resets is None or ResetType.GRACEFUL_SHUTDOWN in system.allowed_resets
        )
        graceful = 0.0
        if graceful_offered:
            await self._reset(system, ResetType.GRACEFUL_SHUTDOWN)
            reached, graceful, current = await self._wait(PowerState.OFF, graceful_timeout)
            if reached:
                return result(OffPath.GRACEFUL, graceful, None)
            log.warning(
                "BMC %s: %s still %s %.0f s after GracefulShutdown; sending ForceOff",
                self.config.name, system.id, current, graceful,
            )  # fmt: skip
            system = await self.system()
            if system.power_state is PowerState.OFF:
                return result(OffPath.GRACEFUL, loop.time() - start, None)
        await self._reset(system, ResetType.FORCE_OFF)
        reached, force, current = await self._wait(PowerState.OFF, force_timeout)
        if not reached:
            raise self._error(
                ErrorKind.TIMEOUT, f"{system.id} still {current} {force_timeout:g} s after ForceOff"
            )
        path = OffPath.FORCED_AFTER_TIMEOUT if graceful_offered else OffPath.FORCED_ONLY
        return result(path, graceful, force)

    async def power_on(self, timeout: float) -> float:  # noqa: ASYNC109 (deadline, see above)
        """Reset type On, then wait for PowerState On; returns the seconds waited."""
        system = await self.system()
        if system.power_state is PowerState.ON:
            return 0.0
        await self._reset(system, ResetType.ON)
        return await self.wait_for_power_state(PowerState.ON, timeout)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _reset_types(values: Iterable[object]) -> Iterable[ResetType]:
    known = {t.value for t in ResetType}
    return (ResetType(v) for v in values if isinstance(v, str) and v in known)


def _message(data: Mapping[str, Any]) -> str:
    err = data.get("error")
    if not isinstance(err, dict):
        return "no details"
    infos = err.get("@Message.ExtendedInfo")
    if isinstance(infos, list) and infos and isinstance(infos[0], dict) and infos[0].get("Message"):
        text = str(infos[0]["Message"])
    else:
        text = str(err.get("message") or err.get("code") or "no details")
    return text[:200]
