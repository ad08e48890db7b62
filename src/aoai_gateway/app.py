"""The gateway as an ASGI application.

    app = create_app(load_settings("config.yaml"))          # serve with any ASGI server (lifespan opens it)
    app = create_app(settings, upstream=my_client)          # tests: inject the upstream client

    async with open_gateway(settings) as gateway: ...      # the built gateway without a server (factory.py)

Order of work for each request: create its `Exchange`, route, run the handler, render any `GatewayError` as
OpenAI's error JSON (a status is only chosen before the first byte), then tell the listeners (usage ledger,
metrics, access log) what happened. A WebSocket session (the Realtime API) goes the same way: one `Exchange` for
the session, a route from the WebSocket table, a refusal as an HTTP answer before the handshake completes, and the
listeners told when the session closed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from .api_call import Call
from .config import Settings
from .errors import GatewayError, UpstreamError
from .exchange import Exchange, ExchangeListener, ExchangeTracer
from .http.asgi import ASGIApp, Message, Receive, Scope, Send
from .http.cors import CorsMiddleware
from .http.paths import Router, SocketRouter
from .http.request import ClientDisconnected, Request
from .http.responses import send_error
from .http.websocket import WebSocket
from .logs import AccessLog
from .proxy import AbortResponse, ProxyService
from .upstream import UpstreamClient

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter  # the [otel] extra, only with tracing.enabled

log = logging.getLogger("aoai_gateway")

_REQUEST_ID = b"x-gateway-request-id"
_DEPLOYMENT = b"x-gateway-deployment"


class Gateway:
    """The built gateway: routes, the proxy service and listeners, all given at construction (`open_gateway`)."""

    def __init__(
        self,
        router: Router,
        service: ProxyService,
        listeners: Sequence[ExchangeListener],
        *,
        deployment_header: bool,
        sockets: SocketRouter | None = None,
        tracer: ExchangeTracer | None = None,
    ) -> None:
        self.router = router
        self.service = service
        self.listeners = tuple(listeners)
        self.deployment_header = deployment_header
        self.sockets = sockets if sockets is not None else SocketRouter()
        self.tracer = tracer  # only with tracing.enabled; it is one of the listeners too
        self._ids = RequestIds()
        self.caller = InProcessCaller(service, self.listeners, tracer)

    async def call(self, call: Call, *, key: str | None = None, on_body: OnBody | None = None) -> Answer:
        """One API call made in-process (call analytics, the assistant): see `InProcessCaller.call`."""
        return await self.caller.call(call, key=key, on_body=on_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(self._ids.next(), scope["method"], scope["path"], time.perf_counter())
        if self.tracer is not None:  # the request's span opens here; its attempts' spans are its children
            self.tracer.started(exchange, scope["headers"])
        request = Request(scope, receive, exchange)

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message["headers"].append((_REQUEST_ID, exchange.request_id.encode()))
                if exchange.deployment is not None and self.deployment_header:  # which deployment answered
                    message["headers"].append((_DEPLOYMENT, exchange.deployment.encode()))
            else:
                exchange.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            matched, params = self.router.match(request.method, request.path)
            exchange.route = matched.template
            await matched.handler(request, send_counted, params)
        except GatewayError as exc:
            if exchange.status:
                log.warning("error after the response started: %s", exc.message)
            else:
                if isinstance(exc, UpstreamError):
                    log.warning("upstream failure: %s", exc.message)
                await send_error(send_counted, exc)
        except ClientDisconnected:
            exchange.status = exchange.status or 499
        except AbortResponse:
            exchange.status = exchange.status or 502
            raise
        except Exception:
            log.exception("unhandled error in %s %s", request.method, exchange.route)
            if exchange.status:
                raise
            await send_error(send_counted, GatewayError("The gateway had an internal error; it was logged."))
        finally:
            if exchange.client_disconnected:
                exchange.status = 499
            exchange.duration = time.perf_counter() - exchange.started
            for listener in self.listeners:
                listener.finished(exchange)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One WebSocket session, handshake to close; the listeners hear of it once it is over."""
        path = scope["path"]
        exchange = Exchange(self._ids.next(), "GET", path, time.perf_counter())
        socket = WebSocket(scope, receive, send, exchange)
        try:
            handler = self.sockets.match(path)
            exchange.route = path
            await handler(socket)
        except GatewayError as exc:
            if socket.accepted:
                log.warning("error in a WebSocket session: %s", exc.message)
                await socket.close(1011, "gateway error")
            else:
                await socket.refuse(exc)
        except Exception:
            log.exception("unhandled error in WebSocket %s", exchange.route)
            if socket.accepted:
                await socket.close(1011, "gateway error")
            elif not socket.closed:
                await socket.refuse(GatewayError("The gateway had an internal error; it was logged."))
        finally:
            exchange.duration = time.perf_counter() - exchange.started
            for listener in self.listeners:
                listener.finished(exchange)


class RequestIds:
    """Request ids: 16 hex digits, a random half per process and a counter (no system call per request).

    ids = RequestIds(); ids.next()   # "9f3a61c2" + "0000002a"
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(int.from_bytes(os.urandom(3)))

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFF:08x}"


class InProcessCaller:
    """API calls made in-process: the access mode, routing, failover, local models and listeners of a served
    request, without HTTP. Built once with the gateway; the assistant gets its own before the routes exist."""

    def __init__(
        self, service: ProxyService, listeners: Sequence[ExchangeListener], tracer: ExchangeTracer | None
    ) -> None:
        self.service = service
        self.listeners = listeners
        self.tracer = tracer

    async def call(self, call: Call, *, key: str | None = None, on_body: OnBody | None = None) -> Answer:
        """`key` is the caller's key, as a client would send it. Gateway errors are raised as such; an
        upstream's error answer comes back as the answer. With `on_body`, each piece of the body goes there as it
        comes (a stream, read while it is relayed) instead of into `Answer.body`."""
        path = f"/v1/{call.operation}"
        headers = [(b"content-type", call.content_type)]
        if key:
            headers.append((b"authorization", f"Bearer {key}".encode()))
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
        exchange = Exchange(os.urandom(8).hex(), "POST", path, time.perf_counter(), route=path)
        exchange.bytes_in = len(call.body)
        if self.tracer is not None:
            self.tracer.started(exchange, headers)
        request = Request(scope, _held_open, exchange)
        answer = Answer(exchange, on_body)
        try:
            await self.service.access.authenticate(request)
            await self.service.forward(request, answer.send, call)
        except GatewayError as exc:
            exchange.status = exc.status
            raise
        finally:
            exchange.duration = time.perf_counter() - exchange.started
            for listener in self.listeners:
                listener.finished(exchange)
        return answer


# (status, a piece of the body): an in-process caller reading a stream as it comes
OnBody = Callable[[int, bytes], Awaitable[None]]


class Answer:
    """What an in-process call got back: status, headers and the whole body (unless it went to `on_body`)."""

    __slots__ = ("body", "exchange", "headers", "on_body", "status")

    def __init__(self, exchange: Exchange, on_body: OnBody | None = None) -> None:
        self.exchange = exchange
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.on_body = on_body

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = self.exchange.status = message["status"]
            self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]}
        else:
            piece = message.get("body", b"")
            self.exchange.bytes_out += len(piece)
            if self.on_body is None:
                self.body += piece
            elif piece:
                await self.on_body(self.status, piece)


async def _held_open() -> Message:
    # An in-process caller never disconnects: the service's disconnect watcher waits here until it is cancelled.
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


class GatewayApp:
    """The ASGI entry point: the lifespan opens the gateway (factory.py) and closes it in reverse."""

    def __init__(
        self,
        settings: Settings,
        upstream: UpstreamClient | None = None,
        access_log: AccessLog | None = None,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        self.settings = settings
        self._upstream = upstream
        self._access_log = access_log
        self._span_exporter = span_exporter
        self._gateway: Gateway | None = None
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            gateway = self._gateway or await self._open()
            await gateway(scope, receive, send)
        elif scope["type"] == "websocket":
            gateway = self._gateway or await self._open()
            await gateway.websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _open(self) -> Gateway:
        # Only servers without lifespan support get here with no gateway: open it on the first request.
        async with self._opening:
            if self._gateway is None:
                from .factory import open_gateway

                self._gateway = await self._stack.enter_async_context(
                    open_gateway(
                        self.settings,
                        upstream=self._upstream,
                        access_log=self._access_log,
                        span_exporter=self._span_exporter,
                    )
                )
            return self._gateway

    async def _close(self) -> None:
        self._gateway = None
        await self._stack.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._open()
                except Exception as exc:
                    log.exception("the gateway could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    settings: Settings,
    upstream: UpstreamClient | None = None,
    access_log: AccessLog | None = None,
    span_exporter: SpanExporter | None = None,
) -> ASGIApp:
    """The gateway app, wrapped in CORS when `cors.enabled`; `span_exporter` replaces OTLP (tests, tracing on)."""
    app = GatewayApp(settings, upstream, access_log, span_exporter)
    return CorsMiddleware(app, settings.cors) if settings.cors.enabled else app


__all__ = ["Answer", "Gateway", "GatewayApp", "InProcessCaller", "OnBody", "create_app"]
