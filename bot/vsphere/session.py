"""One logged-in vCenter session: TLS policy, login, re-login, keep-alive, raw SOAP posts.

Blocking; used only from ``VSphere``'s worker threads. TLS, in order of precedence:
- ``insecure``: no verification at all (``VSphere`` logs a warning when it is set);
- ``thumbprint``: the server certificate's SHA-256 must match (hex, colons optional). Every
  connection checks it, the pyvmomi one through ``pyVim.connect.Connect(thumbprint=...)``
  (``SmartConnect`` would fail first in its unpinned version probe), the raw one here;
- ``ca_file``: verified against that CA bundle;
- default: verified against the system trust store. ``Connect`` gets an explicit context, so
  pyvmomi's silent "no verification for localhost" never applies.
``post`` re-logs in once on ``NotAuthenticated`` (vCenter restarted or the session expired) and
retries; connection errors propagate so the caller can back off and reconnect (except on a
kept-alive pooled connection, which vCenter may have closed while it sat idle: that request is
sent once more on a fresh connection).
Server-side objects that live as long as the login (the inventory's ContainerView, which
vCenter keeps current by itself) are kept in ``kept`` and forgotten on every (re)login and on
``close``: logging out destroys them on the server, so nothing is destroyed one by one.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyVim.connect import Connect
from pyVmomi import vim

from bot.vsphere.soap import MoRef, SoapFault, raise_fault

API_VERSION = "vim.version.v7_0"


class PinMismatch(ssl.SSLError):
    """The server certificate does not match the configured thumbprint."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach one vCenter (built from ``config.VCenterSettings``)."""

    name: str
    host: str
    user: str
    password: str
    port: int = 443
    ca_file: str = ""
    thumbprint: str = ""
    insecure: bool = False
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, host={self.host!r}, port={self.port}, user={self.user!r})"

    @property
    def pin(self) -> str:
        return self.thumbprint.replace(":", "").strip().lower()


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    """The context for both connections; pinning is checked on top of it (see module docstring)."""
    if endpoint.insecure or endpoint.pin:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=endpoint.ca_file or None)


def _pyvmomi_context(endpoint: Endpoint) -> ssl.SSLContext:
    # pyvmomi checks a thumbprint only after a verification failure, so with a pin it needs a
    # verifying context (and ignores the pin under an unverified one).
    if endpoint.pin and not endpoint.insecure:
        return ssl.create_default_context(cafile=endpoint.ca_file or None)
    return ssl_context(endpoint)


class Session:
    """A vCenter login plus a small pool of raw HTTPS connections sharing its cookie."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._context = ssl_context(endpoint)
        self._lock = threading.Lock()
        self._pool: list[http.client.HTTPSConnection] = []
        self._open_conns: set[http.client.HTTPSConnection] = set()
        self._si: Any = None
        self._content: Any = None
        self._kept: dict[str, MoRef] = {}
        self.logins = 0  # every one after the first is a reconnect (outage, vCenter restart)

    @property
    def content(self) -> Any:
        """The ServiceContent (pyvmomi object: use only inside worker threads)."""
        if self._content is None:
            self.login()
        return self._content

    @property
    def property_collector(self) -> MoRef:
        return MoRef("PropertyCollector", self.content.propertyCollector._moId)

    def kept(self, key: str, create: Callable[[], MoRef]) -> MoRef:
        """The object kept under ``key`` for this login, made by ``create`` the first time."""
        ref = self._kept.get(key)
        if ref is None:
            ref = self._kept[key] = create()
        return ref

    def forget(self, key: str) -> None:
        """Drop a kept object the server no longer knows (the next ``kept`` makes a new one)."""
        self._kept.pop(key, None)

    def login(self) -> None:
        """(Re)connect and log in; checks the pin first on a raw connection."""
        self._drop()
        if self._si is not None:  # a re-login (session expired, vCenter restarted): its sockets go too
            self._si._stub.DropConnections()
        conn = self._open()  # raises PinMismatch / SSLError / OSError before any password is sent
        self._release(conn)
        ep = self.endpoint
        si = Connect(  # type: ignore[no-untyped-call]
            host=ep.host,
            port=ep.port,
            user=ep.user,
            pwd=ep.password,
            version=API_VERSION,
            sslContext=_pyvmomi_context(ep),
            thumbprint=ep.pin or None,
            httpConnectionTimeout=ep.timeout,
        )
        content = si.RetrieveContent()
        with self._lock:
            self._si, self._content, self._kept = si, content, {}
            self.logins += 1

    def close(self) -> None:
        si, self._si, self._content, self._kept = self._si, None, None, {}
        if si is not None:
            try:
                si.content.sessionManager.Logout()
            except (OSError, http.client.HTTPException, vim.fault.NotAuthenticated):
                pass
            finally:
                si._stub.DropConnections()
        self._drop()

    def call(self, fn: Any) -> Any:
        """Run ``fn(service_instance)``; log in again once if the session is gone."""
        if self._si is None:
            self.login()
        try:
            return fn(self._si)
        except vim.fault.NotAuthenticated:
            self.login()
            return fn(self._si)

    def post(self, body: bytes) -> bytes:
        """One raw SOAP request with the session cookie; re-logs in once on NotAuthenticated."""
        if self._si is None:
            self.login()
        try:
            return self._post(body)
        except SoapFault as fault:
            if fault.kind != "NotAuthenticated":
                raise
            self.login()
            return self._post(body)

    def _post(self, body: bytes) -> bytes:
        stub = self._si._stub
        headers = {
            "Content-Type": "text/xml; charset=UTF-8",
            "SOAPAction": stub.versionId,
            "Cookie": stub.cookie,
        }
        for attempt in (1, 2):
            conn, pooled = self._take()
            try:
                conn.request("POST", "/sdk", body, headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self._open_conns.discard(conn)
                conn.close()
                if pooled and attempt == 1:
                    continue  # a kept-alive connection vCenter closed while idle: once more, fresh
                raise
            break
        self._release(conn)
        if response.status == 500:
            raise_fault(payload)
        if response.status not in (200, 500):
            raise OSError(f"vCenter {self.endpoint.name}: HTTP {response.status} {response.reason}")
        return payload

    def _open(self) -> http.client.HTTPSConnection:
        ep = self.endpoint
        conn = http.client.HTTPSConnection(ep.host, ep.port, timeout=ep.timeout, context=self._context)
        conn.connect()
        if ep.pin and not ep.insecure:
            der = conn.sock.getpeercert(binary_form=True) if conn.sock else None
            if not der or not hmac.compare_digest(hashlib.sha256(der).hexdigest(), ep.pin):
                conn.close()
                raise PinMismatch(
                    f"vCenter {ep.name}: certificate SHA-256 does not match the configured thumbprint"
                )
        with self._lock:
            self._open_conns.add(conn)  # so _release pools it and _drop can close it
        return conn

    def _take(self) -> tuple[http.client.HTTPSConnection, bool]:
        """A kept-alive connection from the pool (True) or a new one (False)."""
        with self._lock:
            if self._pool:
                return self._pool.pop(), True
        return self._open(), False

    def _release(self, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            if conn.sock is not None and conn in self._open_conns and len(self._pool) < 4:
                self._pool.append(conn)
                return
            self._open_conns.discard(conn)
        conn.close()

    def _drop(self) -> None:
        """Close every raw connection, also one a WaitForUpdatesEx is blocked on (that unblocks it)."""
        with self._lock:
            conns, self._open_conns, self._pool = self._open_conns, set(), []
        for conn in conns:
            conn.close()
