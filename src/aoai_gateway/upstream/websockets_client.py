"""Upstream WebSockets through the `websockets` library, for clients whose HTTP library has none (httpx).

socket = await connect_websocket(WebSocketRequest(url, headers), timeout=10, proxy=None)

Its exceptions become ours here, as `upstream/aiohttp_client.py` maps aiohttp's: nothing else sees them.
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from ..errors import UpstreamError, UpstreamSessionRefused, UpstreamTimeout, UpstreamUnreachable
from .base import Frame, WebSocketRequest, mapped_errors

_ERRORS: dict[type[BaseException], type[UpstreamError]] = {
    TimeoutError: UpstreamTimeout,
    WebSocketException: UpstreamUnreachable,
    OSError: UpstreamUnreachable,
}
_CLOSE_SECONDS = 5.0


async def connect_websocket(request: WebSocketRequest, timeout: float, proxy: str | None) -> WebSocketsUpstream:
    uri = "ws" + request.url.removeprefix("http")  # http -> ws, https -> wss
    try:
        with mapped_errors(_ERRORS, "WebSocket handshake"):
            socket = await connect(
                uri,
                additional_headers=request.headers,
                subprotocols=[Subprotocol(p) for p in request.protocols] or None,
                max_size=request.max_frame_bytes,
                open_timeout=timeout,
                close_timeout=_CLOSE_SECONDS,
                ping_interval=None,  # the relay bounds idle sessions; the upstream pings when it wants to
                compression=None,
                user_agent_header=None,
                proxy=proxy,
            )
    except UpstreamError as exc:
        refused = exc.__cause__
        if isinstance(refused, InvalidStatus):
            response = refused.response
            raise UpstreamSessionRefused(response.status_code, response.headers.get("retry-after")) from None
        raise
    return WebSocketsUpstream(socket)


class WebSocketsUpstream:
    """A `websockets` client connection as an `UpstreamWebSocket`."""

    __slots__ = ("_socket", "close_code", "close_reason", "protocol")

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self.protocol: str | None = socket.subprotocol
        self.close_code: int | None = None
        self.close_reason = ""

    async def receive(self) -> Frame | None:
        try:
            return await self._socket.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd
            if received is not None:
                self.close_code, self.close_reason = received.code, received.reason
            else:  # no close frame came: lost, or closed by us for a frame over max_size
                sent = closed.sent
                self.close_code = 1009 if sent is not None and sent.code == 1009 else 1006
            return None

    async def send(self, frame: Frame) -> None:
        with mapped_errors(_ERRORS, "WebSocket send"):
            await self._socket.send(frame)

    async def close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(Exception):  # the peer may already be gone: closing is best effort
            await self._socket.close(code, reason[:123])
