"""The CONNECT listener: a tunnel to an allowed host is answered by the gateway itself, over TLS.

    proxy = ForwardProxy(settings, open_ca(settings), new_http_connection)   # in each server process
    server = await proxy.listen(sock)                   # closed first at shutdown

`https_proxy=http://gateway:3128` makes a client send `CONNECT api.openai.com:443`. For a host in
`forward_proxy.hosts` (port 443 only) the listener answers `200 Connection Established`, takes the TLS handshake
with a certificate for that host signed by the gateway's CA (`loop.start_tls` on the accepted transport), and hands
the decrypted stream to a new connection of the main port's own HTTP protocol: the guarded httptools protocol of
`http/protocol.py`, bound to the same app, server state and limits. So a tunnelled `POST /v1/chat/completions`
is the same request as one sent to the main port: routing, keys, caps, limits, logs and metrics (and it counts
towards `server.max_connections`). Nothing is ever forwarded to the host the client named.

Why a second port: uvicorn's HTTP protocols take a CONNECT for an upgrade they cannot serve, and the proxy must
answer before TLS starts, which only a protocol of its own can do.

Refused, each with one OpenAI-shaped answer and the connection closed:
- any method but CONNECT (absolute-form proxy requests for plain http): 405;
- a CONNECT to any other host or port (127.0.0.1:22, an internal name): 403, nothing is dialled;
- a CONNECT head over `server.max_header_bytes`: 431; not complete within `server.header_timeout_seconds`: 408;
- bytes sent after the CONNECT head before the 200 (a client must wait for it): 400;
- more open connections than `server.max_connections`: 503 with Retry-After.
A tunnel whose TLS handshake is not done within `forward_proxy.handshake_timeout_seconds` (a client that never
starts TLS, or does not trust the CA) is closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import cast

from ..config import Settings
from ..errors import (
    GatewayError,
    HeadersTooLarge,
    InvalidRequest,
    MethodNotAllowed,
    PermissionDenied,
    RequestTimeout,
    TooManyConnections,
)
from ..http.asgi import ASGIApp, Receive, Scope, Send
from ..http.protocol import render_refusal
from .ca import CertificateAuthority

log = logging.getLogger("aoai_gateway.forward_proxy")

_ESTABLISHED = b"HTTP/1.1 200 Connection Established\r\n\r\n"
_LINGER_SECONDS = 2.0


def open_ca(settings: Settings) -> CertificateAuthority:
    """The gateway's CA in `data_dir`/forward-proxy, made there on first start."""
    return CertificateAuthority.open(Path(settings.data_dir).expanduser() / "forward-proxy")


class _Handover(asyncio.Protocol):
    """Holds what the TLS layer delivers between the end of the handshake and the HTTP protocol taking over."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.received.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def under_api_base(app: ASGIApp, api_base: str) -> ASGIApp:
    """`app` seeing a tunnelled `/v1/...` (the OpenAI SDKs' path) under the gateway's `api_base`."""
    if api_base == "/v1":
        return app
    prefix = api_base.encode()

    async def mapped(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and (path == "/v1" or path.startswith("/v1/")):
            raw: bytes = scope.get("raw_path") or path.encode()
            scope = {**scope, "path": api_base + path[3:], "raw_path": prefix + raw[3:]}
        await app(scope, receive, send)

    return mapped


class ForwardProxy:
    """One process's CONNECT listener; `http()` makes a connection of the main port's HTTP protocol."""

    def __init__(
        self,
        settings: Settings,
        ca: CertificateAuthority,
        http: Callable[[], asyncio.Protocol],
        connections: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.hosts = frozenset(settings.forward_proxy.hosts)
        self.ca = ca
        self.http = http
        self.connections = connections  # the main protocol's open connections (tunnels included once handed over)
        self.pending = 0  # connections on this port not handed over yet
        self.tunnels = 0  # tunnels handed over since start (tests, logs)
        for host in self.hosts:
            ca.server_context(host)  # leaves made now, not on a client's first handshake

    async def listen(self, sock: socket.socket) -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(lambda: ConnectProtocol(self), sock=sock)

    def full(self) -> bool:
        return self.pending + self.connections() > self.settings.server.max_connections


class ConnectProtocol(asyncio.Protocol):
    """Reads one CONNECT head, answers it, then gives the transport to TLS and the gateway's HTTP protocol."""

    def __init__(self, proxy: ForwardProxy) -> None:
        self.proxy = proxy
        self.limits = proxy.settings.server
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False
        self.done = False  # answered (refused or handed over): nothing more is read here

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.proxy.pending += 1
        self.counted = True
        if self.proxy.full():
            self._refuse(TooManyConnections(self.limits.max_connections))
            return
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.limits.header_timeout_seconds, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > self.limits.max_header_bytes:
                self._refuse(HeadersTooLarge(self.limits.max_header_bytes, self.limits.max_headers))
            return
        if end + 4 > self.limits.max_header_bytes or self.head.count(b"\r\n", 0, end) >= self.limits.max_headers:
            self._refuse(HeadersTooLarge(self.limits.max_header_bytes, self.limits.max_headers))
            return
        if len(self.head) > end + 4:
            self._refuse(InvalidRequest("Send nothing after a CONNECT head before its 200 answer."))
            return
        request_line = bytes(self.head[: self.head.find(b"\r\n")])
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._refuse(InvalidRequest("The request line is not HTTP/1.x."))
            return
        method, target = parts[0], parts[1].decode("latin-1")
        if method != b"CONNECT":
            self._refuse(MethodNotAllowed(method.decode("latin-1")[:16], "this forward proxy", ["CONNECT"]))
            return
        host = self._allowed(target)
        if host is None:
            self._refuse(
                PermissionDenied(f"This gateway's forward proxy serves only {', '.join(sorted(self.proxy.hosts))}:443.")
            )
            return
        self.done = True
        self._cancel_timer()
        assert self.transport is not None
        self.transport.pause_reading()  # the TLS layer reads from here on
        self.transport.write(_ESTABLISHED)
        asyncio.get_running_loop().create_task(self._tunnel(host))

    def _allowed(self, target: str) -> str | None:
        host, sep, port = target.rpartition(":")
        host = host.lower()
        return host if sep and port == "443" and host in self.proxy.hosts else None

    async def _tunnel(self, host: str) -> None:
        transport = self.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        # The client's first request can arrive with the end of the handshake, before start_tls returns: it
        # waits in `handover` until the HTTP protocol has its transport.
        handover = _Handover()
        try:
            tls = await loop.start_tls(
                transport,
                handover,
                self.proxy.ca.server_context(host),
                server_side=True,
                ssl_handshake_timeout=self.proxy.settings.forward_proxy.handshake_timeout_seconds,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            log.info("forward proxy: TLS for %s did not start: %s", host, type(exc).__name__)
            transport.abort()
            self._release()
            return
        self._release()  # counted by the HTTP protocol from here on
        if tls is None or handover.lost:
            transport.abort()
            return
        self.proxy.tunnels += 1
        http = self.proxy.http()
        tls.set_protocol(http)
        http.connection_made(tls)
        for data in handover.received:
            http.data_received(data)
        if handover.eof:
            http.eof_received()

    def _head_timeout(self) -> None:
        self.timer = None
        if self.head.strip():
            self._refuse(RequestTimeout("head", self.limits.header_timeout_seconds))
        elif self.transport is not None:
            self.done = True
            self.transport.close()

    def _refuse(self, error: GatewayError) -> None:
        # Answer, FIN, then drop what still arrives for a moment: closing with unread input would reset the
        # connection and lose the answer.
        self.done = True
        self._cancel_timer()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(render_refusal(error))
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.close)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _release(self) -> None:
        self._cancel_timer()
        if self.counted:
            self.counted = False
            self.proxy.pending -= 1


__all__ = ["ConnectProtocol", "ForwardProxy", "open_ca", "under_api_base"]
