"""The default upstream client, on aiohttp: the fastest of the candidates measured (see bench/README.md).

client = AiohttpUpstream(settings.upstream, on_resend)   # create inside the running event loop
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_writer import StreamWriter
from aiohttp.payload import Payload

from ..config import UpstreamSettings
from ..errors import UpstreamError, UpstreamSessionRefused, UpstreamTimeout, UpstreamUnreachable
from ..http.spool import Body
from .base import Frame, ResendHook, UpstreamRequest, WebSocketRequest, mapped_errors


def _error_map() -> dict[type[BaseException], type[UpstreamError]]:
    # The SOCKS connector raises its own classes (not aiohttp's, not OSError).
    from aiohttp_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

    return {
        TimeoutError: UpstreamTimeout,
        aiohttp.ServerTimeoutError: UpstreamTimeout,
        ProxyTimeoutError: UpstreamTimeout,
        aiohttp.ClientError: UpstreamUnreachable,
        OSError: UpstreamUnreachable,
        ProxyError: UpstreamUnreachable,
        ProxyConnectionError: UpstreamUnreachable,
    }


# The one place aiohttp's exceptions become ours.
_ERRORS = _error_map()


class _Response:
    __slots__ = ("_response", "raw_headers", "status")
    audio_seconds = 0.0  # only in-process speech models hear audio

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.raw_headers = list(response.raw_headers)

    async def read(self) -> bytes:
        with mapped_errors(_ERRORS, "response"):
            return await self._response.read()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        # Each read is bounded by the stream's `sock_read` (stream_idle): no timer of our own per chunk.
        content = self._response.content
        while True:
            with mapped_errors(_ERRORS, "stream"):
                chunk = await content.readany()
            if not chunk:
                return
            yield chunk

    async def release(self) -> None:
        # release() returns a fully read connection to the pool; otherwise aiohttp closes it.
        self._response.release()


# A large body goes out 1 MiB per write: no single write holds the event loop for long.
_CHUNK = 1024 * 1024


class _RequestBody(Payload):
    """The request body, noting whether the connection was found closing before any byte of the request was written.

    aiohttp holds the request head back and writes it with the body's first chunk, and refuses to write to a
    transport that is closing: if the transport is closing when the body starts, nothing of the request goes out.
    """

    _autoclose = True

    def __init__(self, body: Body) -> None:
        super().__init__(body)
        self._size = len(body)
        self.unsent = False

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        # The test aiohttp's writer makes before the first write below; nothing is awaited in between (this
        # client sets no trace hooks), so when it holds, the write is refused and the upstream got nothing.
        if isinstance(writer, StreamWriter):
            transport = writer.transport
            self.unsent = transport is None or transport.is_closing()
        value = self._value
        size = len(value)
        if size <= _CHUNK and (content_length is None or content_length >= size):  # one write, no copy
            await writer.write(value)
            return
        view = memoryview(value)[:content_length]
        for start in range(0, len(view), _CHUNK):
            await writer.write(view[start : start + _CHUNK])


class AiohttpUpstream:
    """Pooled keep-alive connections, optional HTTP or SOCKS5 egress proxy, bodies relayed undecoded."""

    def __init__(self, settings: UpstreamSettings, on_resend: ResendHook | None = None) -> None:
        timeouts = settings.timeouts
        if settings.socks_proxy:
            from aiohttp_socks import ProxyConnector

            connector: aiohttp.BaseConnector = ProxyConnector.from_url(
                settings.socks_proxy,
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_seconds,
                rdns=True,
            )
        else:
            connector = aiohttp.TCPConnector(
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_seconds,
                ttl_dns_cache=300,
            )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # one client's cookies must never reach another's request
            auto_decompress=False,  # relay bytes as the upstream sent them
            skip_auto_headers=("Accept-Encoding", "Accept", "User-Agent", "Content-Type"),
        )
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect, sock_read=timeouts.read)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.stream_idle
        )
        self._proxy = settings.http_proxy
        self._on_resend = on_resend

    async def send(self, request: UpstreamRequest, *, stream: bool) -> _Response:
        # A stream's every socket read, its first byte included, gets `stream_idle`; other answers get `read`.
        with mapped_errors(_ERRORS, "request"):
            body = _RequestBody(request.body) if request.body else None
            try:
                response = await self._request(request, stream, body)
            except (aiohttp.ClientError, OSError):
                # Once a byte may have reached the upstream, a failure is this attempt's: a second copy could be
                # billed twice. Only a pooled connection the upstream closed while it idled, found closing before
                # the first write, is tried again.
                if body is None or not body.unsent:
                    raise
                if self._on_resend is not None:
                    self._on_resend(request)
                response = await self._request(request, stream, _RequestBody(request.body))
        return _Response(response)

    async def _request(
        self, request: UpstreamRequest, stream: bool, body: _RequestBody | None
    ) -> aiohttp.ClientResponse:
        return await self._session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=body,
            allow_redirects=False,
            proxy=self._proxy,
            timeout=self._stream_timeout if stream else self._timeout,
        )

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> _WebSocket:
        # From the pooled session (its proxy, DNS cache and connection limit); the connection leaves the pool
        # for the session's life. Pings are answered by aiohttp; the relay above bounds idle sessions.
        try:
            with mapped_errors(_ERRORS, "WebSocket handshake"):
                async with asyncio.timeout(timeout):
                    socket = await self._session.ws_connect(
                        request.url,
                        protocols=request.protocols,
                        headers=request.headers,
                        proxy=self._proxy,
                        max_msg_size=request.max_frame_bytes,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_SECONDS),
                        autoclose=True,
                        autoping=True,
                    )
        except UpstreamError as exc:
            refused = exc.__cause__
            if isinstance(refused, aiohttp.WSServerHandshakeError) and refused.status >= 300:
                retry_after = refused.headers.get("retry-after") if refused.headers else None
                raise UpstreamSessionRefused(refused.status, retry_after) from None
            raise
        return _WebSocket(socket)

    async def aclose(self) -> None:
        await self._session.close()


_CLOSE_SECONDS = 5.0  # the close handshake; a peer that does not answer is dropped after it
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


class _WebSocket:
    """aiohttp's client WebSocket as an `UpstreamWebSocket`: messages, then how it closed."""

    __slots__ = ("_socket", "close_code", "close_reason", "protocol")

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self.protocol = socket.protocol
        self.close_code: int | None = None
        self.close_reason = ""

    async def receive(self) -> Frame | None:
        message = await self._socket.receive()
        kind = message.type
        while kind is aiohttp.WSMsgType.PING or kind is aiohttp.WSMsgType.PONG:  # answered by aiohttp itself
            message = await self._socket.receive()
            kind = message.type
        if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
            data: Frame = message.data
            return data
        if kind in _CLOSED:
            if kind is aiohttp.WSMsgType.ERROR:
                # A frame over max_msg_size, a protocol violation, or the connection lost.
                too_big = isinstance(message.data, aiohttp.WebSocketError) and message.data.code == 1009
                self.close_code, self.close_reason = (1009, "message too big") if too_big else (1006, "")
            else:
                self.close_code = self._socket.close_code or 1005
                self.close_reason = message.extra if isinstance(message.extra, str) else ""
        await self._socket.close()
        return None

    async def send(self, frame: Frame) -> None:
        with mapped_errors(_ERRORS, "WebSocket send"):
            if isinstance(frame, str):
                await self._socket.send_str(frame)
            else:
                await self._socket.send_bytes(frame)

    async def close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(Exception):  # the peer may already be gone: closing is best effort
            await self._socket.close(code=code, message=reason.encode()[:123])
