"""An upstream client on httpx, kept as a measured alternative (`upstream.client: httpx`).

client = HttpxUpstream(settings.upstream)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from ..config import UpstreamSettings
from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .base import UpstreamRequest, mapped_errors

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


class HttpxUpstream:
    def __init__(self, settings: UpstreamSettings) -> None:
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

    async def send(self, request: UpstreamRequest, *, stream: bool) -> _Response:
        built = self._client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=bytes(request.body),  # always bytes here: only in-process clients get mapped uploads
            timeout=self._stream_timeout if stream else httpx.USE_CLIENT_DEFAULT,
        )
        # httpx adds these unless told otherwise; the gateway relays only what the client sent.
        for name in ("accept-encoding", "accept", "user-agent"):
            if not any(k.lower() == name for k, _ in request.headers):
                built.headers.pop(name, None)
        with mapped_errors(_ERRORS, "request"):
            async with asyncio.timeout(self._timeouts.read):
                try:
                    response = await self._client.send(built, stream=True)
                except httpx.RemoteProtocolError:
                    # "Server disconnected without sending a response": a pooled connection closed under the
                    # request (the keep-alive race); one fresh try, as the aiohttp client does.
                    response = await self._client.send(built, stream=True)
        return _Response(response, self._timeouts.stream_idle)

    async def aclose(self) -> None:
        await self._client.aclose()
