"""A thin view over an ASGI WebSocket scope: the handshake's request, accept or refuse, frames, close.

    socket = WebSocket(scope, receive, send, exchange)
    await socket.refuse(AuthenticationError("..."))     # before accepting: an HTTP answer with OpenAI's error JSON
    await socket.accept(subprotocol="realtime")
    frame = await socket.receive()                       # str | bytes, or None once the client closed
    await socket.close(1000)

Refusals use the ASGI `websocket.http.response` extension (uvicorn has it), so a client sees a real 401 or 404
with a body; where a server lacks it, the handshake is closed with 1008 (policy violation) instead.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import GatewayError
from ..exchange import Exchange
from .asgi import Receive, Scope, Send
from .request import Request

# Close codes a peer may not send on the wire (RFC 6455 7.4.1): what goes to the other side instead.
_UNSENDABLE = {1005: 1000, 1006: 1001, 1015: 1001}
_CLOSE_SECONDS = 5.0


def sendable_close_code(code: int | None) -> int:
    """The close code to pass on for one a peer closed with (or None: no close frame at all)."""
    if code is None:
        return 1001
    if code in _UNSENDABLE:
        return _UNSENDABLE[code]
    return code if 1000 <= code <= 1014 or 3000 <= code <= 4999 else 1011


class WebSocket:
    """The client side of one WebSocket session, for handlers of the gateway's WebSocket routes."""

    __slots__ = ("_send", "accepted", "close_code", "close_reason", "closed", "request")

    def __init__(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        self.request = Request(scope, receive, exchange)  # the handshake: headers, query, the typed record
        self._send = send
        self.accepted = False
        self.closed = False  # a close was sent to the client, or the client's came
        self.close_code: int | None = None  # the client's close code, once it closed
        self.close_reason = ""

    @property
    def exchange(self) -> Exchange:
        return self.request.exchange

    @property
    def subprotocols(self) -> list[str]:
        offered: list[str] = self.request.scope.get("subprotocols") or []
        return offered

    async def accept(self, subprotocol: str | None = None) -> None:
        # The first message from the server is websocket.connect; it carries nothing to check.
        message = await self.request.receive()
        if message["type"] != "websocket.connect":
            raise ConnectionError("the client left before the handshake completed")
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": []})
        self.accepted = True
        self.exchange.status = 101

    async def refuse(self, error: GatewayError) -> None:
        """Answer the handshake with `error`'s status and OpenAI JSON body (or a 1008 close without the extension)."""
        self.exchange.status = error.status
        self.closed = True
        if "websocket.http.response" not in self.request.scope.get("extensions", {}):
            await self._send({"type": "websocket.close", "code": 1008, "reason": error.message[:123]})
            return
        body = error.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(name.encode(), value.encode("latin-1")) for name, value in error.headers.items()]
        headers.append((b"x-gateway-request-id", self.exchange.request_id.encode()))
        await self._send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
        await self._send({"type": "websocket.http.response.body", "body": body})
        self.exchange.bytes_out += len(body)

    async def receive(self) -> str | bytes | None:
        """The client's next message; None once it closed (`close_code` then says how)."""
        while True:
            message = await self.request.receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    self.exchange.bytes_in += len(text)
                    return str(text)
                data: bytes = message.get("bytes") or b""
                self.exchange.bytes_in += len(data)
                return data
            if kind == "websocket.disconnect":
                self.closed = True
                self.close_code = message.get("code", 1005)
                self.close_reason = message.get("reason") or ""
                return None

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self._send({"type": "websocket.send", "text": frame})
        else:
            await self._send({"type": "websocket.send", "bytes": frame})
        self.exchange.bytes_out += len(frame)

    async def close(self, code: int, reason: str = "") -> None:
        """Close towards the client, bounded: a client that stopped reading cannot hold the handler."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # TimeoutError included
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self._send({"type": "websocket.close", "code": code, "reason": reason[:123]})
