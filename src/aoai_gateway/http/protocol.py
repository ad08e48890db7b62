"""uvicorn's httptools protocol with the limits a public listener needs; its refusals are OpenAI-shaped JSON.

    uvicorn.Config(app, http=guarded_protocol(settings.server))

What a connection may hold, from `ServerSettings`:
- `max_header_bytes`, `max_headers`: a larger request head gets 431 and the connection is closed;
- `header_timeout_seconds`: the whole head must arrive within this long of the connection opening or of the
  previous response ending; a partial head then gets 408, an idle connection is just closed;
- `body_idle_timeout_seconds`: no body bytes for this long gets 408 (the app sees a disconnect, so a spooled
  body is released); time the app itself leaves the body unread does not count;
- `keepalive_timeout_seconds`: a connection idle this long after an answer is closed;
- `max_connections`: a connection past the cap gets 503 with Retry-After at once, before it sends anything.

Kept off the hot path: llhttp has no header limit of its own and httptools buffers a header value whole, so
bytes are counted per received chunk while a head is open (the exact size is only summed when a chunk count
passes the limit); fields are counted once per request; one timer per connection keeps both the header and the
keep-alive bound (uvicorn arms a keep-alive timer per response), the body timer is armed only when a read leaves
a body incomplete, and each is re-armed from a timestamp when it fires instead of being reset per request or
per chunk.

Each request gets `ServerHooks` in the scope's extensions (http/asgi.py): a client that goes away mid-answer is
reported through its `on_disconnect`, called from `connection_lost`, so nothing per request waits on `receive()`
for it (a task per request cost more than the rest of the bookkeeping together); `push` writes a piece of a
streamed body without a task switch, and `on_writable` says when a full client buffer drained.

A WebSocket upgrade (the Realtime API) hands the connection to uvicorn's WebSocket protocol, with this protocol's
timers cancelled; frame sizes are bounded there (`realtime.max_frame_bytes`) and idle sessions by the relay.

A refusal is written with `connection: close`, then a FIN, then what the client is still sending is read and
dropped for up to `_LINGER_SECONDS`: closing with unread input would reset the connection and lose the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..config import ServerSettings
from ..errors import GatewayError, HeadersTooLarge, InvalidRequest, RequestTimeout, TooManyConnections
from .asgi import SERVER_HOOKS, ServerHooks
from .cycle import ResponseCycle

_LINGER_SECONDS = 2.0


def guarded_protocol(limits: ServerSettings) -> type[asyncio.Protocol]:
    """The protocol class to hand uvicorn as `http=`, bound to these limits."""

    class BoundGuardedProtocol(GuardedHttpProtocol):
        pass

    BoundGuardedProtocol.limits = limits
    return BoundGuardedProtocol


def render_refusal(error: GatewayError) -> bytes:
    """A whole HTTP/1.1 response for `error`, closing the connection."""
    body = error.body()
    head = [
        STATUS_LINE[error.status],
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
        *(f"{name}: {value}\r\n".encode("latin-1") for name, value in error.headers.items()),
        b"\r\n",
    ]
    return b"".join(head) + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `data_received` answers with the pending refusal."""


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ServerSettings] = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keepalive_timeout_seconds  # type: ignore[assignment]  # float is fine
        self._in_head = True  # between requests or inside a head: received bytes count towards the head
        self._in_body = False
        self._head_bytes = 0
        self._last_read = 0.0  # while a body is arriving
        self._head_since = 0.0  # when the clock for the next head started
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._refusal: GatewayError | None = None
        self._refused = False  # answered and lingering: input is dropped
        self._answered = False  # a response completed on this connection: idle now means keep-alive
        self._hooks: ServerHooks | None = None  # the request in progress's (the latest, when pipelined)

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(TooManyConnections(self.limits.max_connections))
            return
        # One timer for the connection's life, re-armed from `_head_since` when it fires: nothing per request.
        self._head_since = self.loop.time()
        limits = self.limits
        self._header_timer = self.loop.call_later(
            min(limits.header_timeout_seconds, limits.keepalive_timeout_seconds), self._header_timeout
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        cycle = self.cycle
        super().connection_lost(exc)
        hooks, self._hooks = self._hooks, None
        if hooks is not None and hooks.on_disconnect is not None and cycle is not None and cycle.disconnected:
            hooks.on_disconnect()

    def shutdown(self) -> None:
        if self._refused:  # still counted while it lingers, so uvicorn's shutdown closes it
            self.transport.close()
        else:
            super().shutdown()

    def handle_websocket_upgrade(self) -> None:
        # The connection becomes a WebSocket (uvicorn hands the transport to its WebSocket protocol, which counts
        # the connection and pings it): this protocol's head and body timers must not close it later.
        self._in_head = self._in_body = False
        self._cancel_timers()
        super().handle_websocket_upgrade()

    def resume_writing(self) -> None:
        super().resume_writing()
        hooks = self._hooks
        if hooks is not None and hooks.on_writable is not None:
            hooks.on_writable()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        elif self._in_body:
            self._last_read = self.loop.time()
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            refusal, self._refusal = self._refusal, None
            if refusal is None:
                self.logger.warning("Invalid HTTP request received.")
                refusal = InvalidRequest("Invalid HTTP request received.")
            self._refuse(refusal)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(HeadersTooLarge(self.limits.max_header_bytes, self.limits.max_headers))
        elif self._in_body and self._body_timer is None:
            self._last_read = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_idle_timeout_seconds, self._body_timeout)

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.limits
        if len(self.headers) > limits.max_headers or (
            # The chunk count over-counts when body bytes came in the same chunk: only then sum the head exactly.
            self._head_bytes > limits.max_header_bytes
            and len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            > limits.max_header_bytes
        ):
            self._refusal = HeadersTooLarge(limits.max_header_bytes, limits.max_headers)
            raise _Refused
        self._in_body = True
        self._start_request()

    def _start_request(self) -> None:
        # uvicorn's on_headers_complete (0.55), making our ResponseCycle; its `limit_concurrency` is not used here
        # (`max_connections` is this protocol's own cap).
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = url.query or b""
        previous = self.cycle
        self.cycle = cycle = ResponseCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        self._hooks = ServerHooks(cycle)
        scope["extensions"] = {SERVER_HOOKS: self._hooks}  # type: ignore[dict-item]
        if previous is None or previous.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:  # pipelined: queued until the one before it answered
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def on_message_complete(self) -> None:
        self._in_body = False
        self._in_head = True
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's own, less its keep-alive timer per response: the connection's one timer closes an idle
        # keep-alive connection (`_header_timeout`), re-armed from `_head_since`.
        self.server_state.total_requests += 1
        self._head_since = self.loop.time()
        self._answered = True
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)

    # Timers

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        limits = self.limits
        # Idle after an answer: the keep-alive bound; a first request or a head under way: the header bound.
        idle = self._answered and not (self._in_head and self._head_bytes)
        timeout = limits.keepalive_timeout_seconds if idle else limits.header_timeout_seconds
        now = self.loop.time()
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_since = now  # a request is in progress (pipelined ones included): no head is due
        remaining = self._head_since + timeout - now
        if remaining > 0:
            # Never later than the keep-alive bound: a request that finishes meanwhile starts that clock.
            self._header_timer = self.loop.call_later(
                min(remaining, limits.keepalive_timeout_seconds), self._header_timeout
            )
            return
        # Waiting for a head since `_head_since`: the next one, or the rest of a body answered early (a 413).
        if self._in_head and self._head_bytes:
            self._refuse(RequestTimeout("headers", self.limits.header_timeout_seconds))
        else:  # idle, or still sending a body that was already answered
            self.transport.close()

    def _body_timeout(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        timeout = self.limits.body_idle_timeout_seconds
        now = self.loop.time()
        if self.flow.read_paused:  # the app is behind, not the client
            self._last_read = now
        idle = now - self._last_read
        if idle < timeout:
            self._body_timer = self.loop.call_later(timeout - idle, self._body_timeout)
            return
        cycle = self.cycle
        if cycle.response_started:
            self.transport.close()
            return
        # The app's next receive() says the client went away: it stops reading and releases what it spooled.
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(RequestTimeout("body", timeout))

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None
        self._unset_keepalive_if_required()

    def _refuse(self, error: GatewayError) -> None:
        self._refused = True
        self._cancel_timers()
        self.logger.debug("refused a connection from %s: %d %s", self.client, error.status, error.code)
        transport = self.transport
        transport.write(render_refusal(error))
        if transport.can_write_eof():
            transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(_LINGER_SECONDS, transport.close)
