"""The default upstream client: HTTP/1.1 on asyncio protocols, responses parsed by llhttp (httptools).

    client = HttptoolsUpstream(settings.upstream, on_resend, on_waiting)   # create inside the running event loop
    response = await client.send(UpstreamRequest("POST", url, headers, body), stream=True)

Why not aiohttp (bench/README.md has the figures): its ClientSession spends most of a relayed request's client
CPU on what the gateway does not use (cookies, redirects, URL re-quoting, trace hooks, a timer per read). Here:
one protocol object per connection, one future per wait, one timer per connection re-armed from timestamps.
At most `upstream.max_connections` connections over all upstreams (idle ones per origin, newest first); a request
finding the pool full waits at most `upstream.pool_wait_seconds` (`on_waiting`: the pool-waiting gauge; logged),
then gets `UpstreamPoolFull` (503, Retry-After). Idle connections close after `upstream.keepalive_seconds`.
Never sent twice: an idle connection the upstream closed is dropped before anything is written to it; once a
byte of a request was written, a failure is the attempt's (the caller fails over). Egress proxies and WebSockets
(realtime sessions) go through aiohttp, which this client keeps for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from urllib.parse import urlsplit

import httptools

from ..config import UpstreamSettings
from ..errors import UpstreamTimeout, UpstreamUnreachable
from ..http.spool import Body
from .base import (
    BodySink,
    ResendHook,
    UpstreamClient,
    UpstreamRequest,
    UpstreamWebSocket,
    WaitingHook,
    WebSocketRequest,
)
from .pool import ConnectionPool, Origin, PooledConnection

log = logging.getLogger("aoai_gateway.upstream")

# A streamed answer is read ahead at most this far while the client is slower than the upstream.
_READ_AHEAD = 256 * 1024
# Bodies up to this size go out in the same write as the head (one copy); larger ones follow it unjoined.
_JOIN_MAX = 64 * 1024
_WRITE_CHUNK = 1024 * 1024


class _Connection(PooledConnection):
    """One upstream connection: write a request, parse its answer, go back to the pool when it ended cleanly."""

    __slots__ = (
        "_body_bytes",
        "_chunks",
        "_closed",
        "_done",
        "_error",
        "_headers_done",
        "_last_io",
        "_loop",
        "_parser",
        "_pool",
        "_reading_paused",
        "_sink",
        "_span",
        "_timer",
        "_waiter",
        "_write_waiter",
        "_writing_paused",
        "counted",
        "idle_since",
        "keep_alive",
        "origin",
        "raw_headers",
        "status",
        "transport",
    )

    def __init__(self, pool: ConnectionPool[_Connection], origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self._loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self.counted = True  # in the pool's count of open connections
        self._reading_paused = False
        self._sink: BodySink | None = None  # while pushing a body (`push_to`)
        self._writing_paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._span = 0.0  # the idle bound while a request waits for bytes; 0 when the connection is idle
        self._last_io = 0.0
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self._headers_done = False
        self._done = False
        self._error: Exception | None = None
        self._chunks: deque[bytes] = deque()
        self._body_bytes = 0
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCP transport is not a subclass

    def data_received(self, data: bytes) -> None:
        self._last_io = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(UpstreamUnreachable("The upstream answered with invalid HTTP."))
            self.close()
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamUnreachable("The upstream switched protocols on a plain request."))
            self.close()

    def eof_received(self) -> bool:
        self._closed = True  # half-closed by the upstream: never reused, never written to again
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.transport = None
        self._cancel_timer()
        self._parser = None  # type: ignore[assignment]  # it holds this protocol: no cycle to outlive the connection
        if self._span and not self._done:
            if self._headers_done and self._reads_to_eof():
                self._done = True  # a body delimited by the connection's end: complete
            else:
                what = "before its answer" if not self._headers_done else "in the middle of its answer"
                self._fail(UpstreamUnreachable(f"The upstream closed the connection {what}."))
        self._wake()
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_exception(UpstreamUnreachable("The upstream closed the connection."))
        self._pool.lost(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        sink = self._sink
        if sink is not None:
            try:
                more = sink(body)
            except Exception as exc:  # the receiving side broke: this answer is over
                self._fail(exc)
                self.close()
                return
            if not more:
                self._pause_reading()
            return
        self._chunks.append(body)
        self._body_bytes += len(body)
        if self._body_bytes > _READ_AHEAD and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._done = True
        self._wake()

    @property
    def reusable(self) -> bool:
        return not self._closed and self.transport is not None and not self.transport.is_closing()

    def send(self, head: bytes, body: Body, span: float) -> None:
        """Write the request (the head and a small body in one write); the answer is awaited with `headers()`."""
        self._reset()
        self._span = span
        self._last_io = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_later(min(span, self._pool.keepalive / 2), self._on_timer)
        assert self.transport is not None
        if len(body) <= _JOIN_MAX:
            self.transport.write(head + body if body else head)
        else:
            self.transport.write(head)

    async def send_large(self, body: Body) -> None:
        """The rest of a large body, a chunk at a time, waiting while the socket's buffer is full."""
        view = memoryview(body)
        for start in range(0, len(view), _WRITE_CHUNK):
            if self._writing_paused:
                self._write_waiter = self._loop.create_future()
                await self._write_waiter
            if self.transport is None:
                raise UpstreamUnreachable("The upstream closed the connection while the request was being sent.")
            self.transport.write(view[start : start + _WRITE_CHUNK])

    async def read(self) -> bytes:
        while not self._done:
            await self._wait()
        body = b"".join(self._chunks)
        self._chunks.clear()
        return body

    async def next_chunk(self) -> bytes:
        """The next piece of the body, b"" once it ended."""
        while not self._chunks:
            if self._done:
                return b""
            await self._wait()
        if len(self._chunks) == 1:
            chunk = self._chunks.popleft()
        else:
            chunk = b"".join(self._chunks)
            self._chunks.clear()
        self._body_bytes = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def push_to(self, sink: BodySink) -> None:
        """Hand the rest of the body to `sink` as it arrives, from `data_received`; return when it ended."""
        while self._chunks:
            if not sink(self._chunks.popleft()):
                self._pause_reading()
        self._body_bytes = 0
        if self._done:
            return
        self._sink = sink
        try:
            while not self._done:
                await self._wait()
        finally:
            self._sink = None

    def resume(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def release(self) -> None:
        """Back to the pool when the answer was read to its end, else closed (its rest is not wanted)."""
        self._span = 0.0
        if self._done and self.keep_alive and self.reusable and self._error is None:
            self.idle_since = self._loop.time()
            self._pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None and not self._done:
            self._error = error
        self._wake()

    def _reads_to_eof(self) -> bool:
        # No length and not chunked: the body is whatever comes before the connection ends.
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                return False
        return True

    # One timer for the connection's life, re-armed from timestamps when it fires (nothing per request): the
    # idle bound of a request in progress (`read` or `stream_idle`), and the keep-alive bound while it idles.

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport is None:
            return
        now = self._loop.time()
        if self._span:
            if self._done:
                due = now + self._span  # answered, not yet released: nothing to time
            elif self._reading_paused:
                self._last_io = now  # the client is behind, not the upstream
                due = now + self._span
            else:
                due = self._last_io + self._span
                if due <= now:
                    self._fail(UpstreamTimeout(f"The upstream sent nothing for {self._span:g} seconds."))
                    self.close()
                    return
            # Look in again within half the keep-alive bound, so that once released it closes on time.
            due = min(due, now + self._pool.keepalive / 2)
        else:
            due = self.idle_since + self._pool.keepalive
            if due <= now:
                self.close()
                return
        self._timer = self._loop.call_at(due, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Response:
    """An answer on a connection; `release()` gives the connection back (or closes it)."""

    __slots__ = ("_connection", "raw_headers", "status")
    audio_seconds = 0.0  # only in-process speech models hear audio

    def __init__(self, connection: _Connection) -> None:
        self._connection: _Connection | None = connection
        self.status = connection.status
        self.raw_headers = connection.raw_headers

    async def read(self) -> bytes:
        assert self._connection is not None, "read after release"
        return await self._connection.read()

    def iter_chunks(self) -> _Chunks:
        assert self._connection is not None, "read after release"
        return _Chunks(self._connection)

    async def push_to(self, sink: BodySink) -> None:
        assert self._connection is not None, "read after release"
        await self._connection.push_to(sink)

    def resume(self) -> None:
        if self._connection is not None:
            self._connection.resume()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.release()


class _Chunks:
    """Body chunks as they arrive (an async iterator without a generator's frame)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._connection.next_chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class HttptoolsUpstream:
    """Pooled keep-alive HTTP/1.1 connections to the upstreams; bodies relayed as they come (undecoded)."""

    def __init__(
        self,
        settings: UpstreamSettings,
        on_resend: ResendHook | None = None,
        on_waiting: WaitingHook | None = None,
    ) -> None:
        self._settings = settings
        self._pool: ConnectionPool[_Connection] = ConnectionPool(settings, _Connection, on_waiting)
        self._read = settings.timeouts.read
        self._stream_idle = settings.timeouts.stream_idle
        self._targets: dict[str, tuple[Origin, bytes]] = {}  # url -> origin and the head's first lines
        self._on_resend = on_resend  # never called: this client drops a closed connection before writing
        self._websockets: UpstreamClient | None = None

    async def send(self, request: UpstreamRequest, *, stream: bool) -> _Response:
        origin, start = self._target(request.url)
        head = _head(request, start)
        body = request.body
        connection, _ = await self._pool.acquire(origin)
        try:
            connection.send(head, body, self._stream_idle if stream else self._read)
            if len(body) > _JOIN_MAX:
                await connection.send_large(body)
            while not connection._headers_done:  # `headers()` inlined: one frame less to resume per wake-up
                await connection._wait()
        except BaseException:
            connection.release()  # not answered to its end: closed
            raise
        return _Response(connection)

    def _target(self, url: str) -> tuple[Origin, bytes]:
        known = self._targets.get(url)
        if known is not None:
            return known
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamUnreachable(f"The upstream URL is not http(s): {parts.scheme or 'no scheme'}.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        start = f"{target} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
        if len(self._targets) >= 4096:  # URLs are per deployment and operation: this only trims a pathological mix
            self._targets.clear()
        self._targets[url] = (origin, start)
        return origin, start

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        if self._websockets is None:
            from .aiohttp_client import AiohttpUpstream

            self._websockets = AiohttpUpstream(self._settings)
        return await self._websockets.connect_websocket(request, timeout)

    async def aclose(self) -> None:
        self._pool.close()
        if self._websockets is not None:
            await self._websockets.aclose()


def _head(request: UpstreamRequest, start: bytes) -> bytes:
    fields = "".join(f"{name}: {value}\r\n" for name, value in request.headers)
    lines = len(request.headers)
    if fields.count("\n") != lines or fields.count("\r") != lines:
        raise UpstreamUnreachable("A header for the upstream holds a line break; nothing was sent.")
    length = len(request.body)
    tail = f"content-length: {length}\r\n\r\n" if length or request.method not in ("GET", "HEAD") else "\r\n"
    return request.method.encode() + b" " + start + (fields + tail).encode("latin-1")


__all__ = ["HttptoolsUpstream"]
