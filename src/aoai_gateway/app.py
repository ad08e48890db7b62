"""The gateway as an ASGI application.

    app = create_app(load_settings("config.yaml"))          # serve with any ASGI server (lifespan opens it)
    app = create_app(settings, upstream=my_client)          # tests: inject the upstream client

    async with open_gateway(settings) as gateway: ...      # the built gateway without a server (factory.py)

Order of work for each request: create its `Exchange`, route, run the handler, render any `GatewayError` as
OpenAI's error JSON (a status is only chosen before the first byte), then tell the listeners (usage ledger,
metrics, access log) what happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack

from .config import Settings
from .errors import GatewayError, UpstreamError
from .exchange import Exchange, ExchangeListener
from .http.asgi import ASGIApp, Message, Receive, Scope, Send
from .http.cors import CorsMiddleware
from .http.paths import Router
from .http.request import ClientDisconnected, Request
from .http.responses import send_error
from .logs import AccessLog
from .proxy import AbortResponse
from .upstream import UpstreamClient

log = logging.getLogger("aoai_gateway")

_REQUEST_ID = b"x-gateway-request-id"
_DEPLOYMENT = b"x-gateway-deployment"


class Gateway:
    """The built gateway: routes and listeners, all given at construction (see `open_gateway`)."""

    def __init__(self, router: Router, listeners: Sequence[ExchangeListener], *, deployment_header: bool) -> None:
        self.router = router
        self.listeners = tuple(listeners)
        self.deployment_header = deployment_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(os.urandom(8).hex(), scope["method"], scope["path"], time.perf_counter())
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
            for listener in self.listeners:
                listener.finished(exchange)


class GatewayApp:
    """The ASGI entry point: the lifespan opens the gateway (factory.py) and closes it in reverse."""

    def __init__(
        self, settings: Settings, upstream: UpstreamClient | None = None, access_log: AccessLog | None = None
    ) -> None:
        self.settings = settings
        self._upstream = upstream
        self._access_log = access_log
        self._gateway: Gateway | None = None
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            gateway = self._gateway or await self._open()
            await gateway(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _open(self) -> Gateway:
        # Only servers without lifespan support get here with no gateway: open it on the first request.
        async with self._opening:
            if self._gateway is None:
                from .factory import open_gateway

                self._gateway = await self._stack.enter_async_context(
                    open_gateway(self.settings, upstream=self._upstream, access_log=self._access_log)
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
    settings: Settings, upstream: UpstreamClient | None = None, access_log: AccessLog | None = None
) -> ASGIApp:
    """The gateway app, wrapped in CORS when `cors.enabled`."""
    app = GatewayApp(settings, upstream, access_log)
    return CorsMiddleware(app, settings.cors) if settings.cors.enabled else app


__all__ = ["Gateway", "GatewayApp", "create_app"]
