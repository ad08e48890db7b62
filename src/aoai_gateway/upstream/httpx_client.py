"""An upstream client on httpx, kept as a measured alternative (`upstream.client: httpx`).

client = HttpxUpstream(settings.upstream, on_resend)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

from ..config import UpstreamSettings
from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .base import ResendHook, UpstreamRequest, UpstreamWebSocket, WebSocketRequest, mapped_errors
from .websockets_client import connect_websocket

_ERRORS: dict[type[BaseException], type[UpstreamError]] = {
    TimeoutError: UpstreamTimeout,
    httpx.TimeoutException: UpstreamTimeout,
    httpx.TransportError: UpstreamUnreachable,
    OSError: UpstreamUnreachable,
}


class _Response:
    __slots__ = ("_idle", "_response", "raw_headers", "status")
    audio_seconds = 0.0  # only in-process speech models hear audio

    def __init__(self, response: httpx.Response, idle: float) -> None:
        self._response = response
        self._idle = idle
        self.status = response.status_code
        self.raw_headers = list(response.headers.raw)

    async def read(self) -> bytes:
        with mapped_errors(_ERRORS, "response"):
            return await self._response.aread()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = self._response.aiter_raw()
        while True:
            with mapped_errors(_ERRORS, "stream"):
                async with asyncio.timeout(self._idle):
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
            yield chunk

    async def release(self) -> None:
        await self._response.aclose()


class _HeadWatch:
    """An httpcore trace hook: `unsent` once writing the request head failed, so that not one byte of it went out.

    httpcore checks that a pooled connection's socket is not readable (no FIN, no reset) before reusing it; what
    is left is the upstream closing it between that check and the write. The head is httpcore's first write, one
    of a few KiB to an idle socket: anyio refuses it (a `WriteError`) when the connection is already lost, before
    handing anything to the transport. httpcore swallows that error to read a response that cannot come.
    """

    __slots__ = ("unsent",)

    def __init__(self) -> None:
        self.unsent = False

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_headers.failed" and isinstance(info.get("exception"), httpcore.WriteError):
            self.unsent = True


class HttpxUpstream:
    def __init__(self, settings: UpstreamSettings, on_resend: ResendHook | None = None) -> None:
        t = settings.timeouts
        self._timeouts = t
        self._stream_timeout = httpx.Timeout(connect=t.connect, read=None, write=t.read, pool=None)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=None),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
                keepalive_expiry=settings.keepalive_seconds,
            ),
            proxy=settings.http_proxy or settings.socks_proxy,
            follow_redirects=False,
            trust_env=False,
        )
        self._on_resend = on_resend
        self._proxy = settings.http_proxy or settings.socks_proxy

    async def send(self, request: UpstreamRequest, *, stream: bool) -> _Response:
        with mapped_errors(_ERRORS, "request"):
            async with asyncio.timeout(self._timeouts.read):
                watch = _HeadWatch()
                try:
                    response = await self._client.send(self._build(request, stream, watch), stream=True)
                except httpx.TransportError:
                    # Once a byte may have reached the upstream, a failure is this attempt's: a second copy could
                    # be billed twice. Only a request whose head could not be written at all is tried again.
                    if not watch.unsent:
                        raise
                    if self._on_resend is not None:
                        self._on_resend(request)
                    response = await self._client.send(self._build(request, stream, _HeadWatch()), stream=True)
        return _Response(response, self._timeouts.stream_idle)

    def _build(self, request: UpstreamRequest, stream: bool, watch: _HeadWatch) -> httpx.Request:
        built = self._client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=bytes(request.body),  # always bytes here: only in-process clients get mapped uploads
            timeout=self._stream_timeout if stream else httpx.USE_CLIENT_DEFAULT,
            extensions={"trace": watch},
        )
        # httpx adds these unless told otherwise; the gateway relays only what the client sent.
        for name in ("accept-encoding", "accept", "user-agent"):
            if not any(k.lower() == name for k, _ in request.headers):
                built.headers.pop(name, None)
        return built

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        # httpx has no WebSockets: the `websockets` library (uvicorn's own) opens them, through the same proxy.
        return await connect_websocket(request, timeout, self._proxy)

    async def aclose(self) -> None:
        await self._client.aclose()
