"""The default upstream client, on aiohttp: the fastest of the candidates measured (see bench/README.md).

client = AiohttpUpstream(settings.upstream)   # create inside the running event loop
"""

from __future__ import annotations

import errno
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..config import UpstreamSettings
from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .base import UpstreamRequest, mapped_errors


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


# A connection reset or a broken pipe on a pooled connection: it was closed under us, nothing was answered.
_STALE_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE})

# aiohttp writes a bytes body in one go and warns above 1 MiB; a file-like body is streamed in chunks instead.
_INLINE_BODY_MAX = 1024 * 1024


def _payload(body: Any) -> Any:
    if not body:
        return None
    return body if len(body) <= _INLINE_BODY_MAX else io.BytesIO(body)


class AiohttpUpstream:
    """Pooled keep-alive connections, optional HTTP or SOCKS5 egress proxy, bodies relayed undecoded."""

    def __init__(self, settings: UpstreamSettings) -> None:

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

    async def send(self, request: UpstreamRequest, *, stream: bool) -> _Response:
        # A stream's every socket read, its first byte included, gets `stream_idle`; other answers get `read`.
        with mapped_errors(_ERRORS, "request"):
            try:
                response = await self._request(request, stream)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if isinstance(exc, aiohttp.ClientOSError) and exc.errno not in _STALE_ERRNOS:
                    raise
                # The keep-alive race: the upstream closed a pooled connection just as we sent on it, before any
                # answer. aiohttp retries that itself for idempotent methods only; one fresh try for the rest.
                response = await self._request(request, stream)
        return _Response(response)

    async def _request(self, request: UpstreamRequest, stream: bool) -> aiohttp.ClientResponse:
        return await self._session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=_payload(request.body),
            allow_redirects=False,
            proxy=self._proxy,
            timeout=self._stream_timeout if stream else self._timeout,
        )

    async def aclose(self) -> None:
        await self._session.close()
