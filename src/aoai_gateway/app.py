"""The gateway as an ASGI application.

    app = create_app(load_settings("config.yaml"))          # serve with any ASGI server
    app = create_app(settings, upstream=my_client)          # tests: inject the upstream client

Order of work for each request: route, run the handler, render any `GatewayError` as OpenAI's error JSON (a
status is only chosen before the first byte), write one access-log line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from .access.runtime import ManagedAccess, open_managed_access
from .config import Settings
from .errors import GatewayError, UpstreamError
from .http.asgi import ASGIApp, Message, Receive, Scope, Send
from .http.cors import CorsMiddleware
from .http.request import ClientDisconnected, Request
from .http.responses import send_error
from .logs import AccessLog, default_access_log
from .metrics import GatewayMetrics
from .proxy import AbortResponse, ProxyService
from .routes import build_router
from .routing import DeploymentRouter
from .speech import start_local_speech, upload_limits
from .store import UsageRow
from .upstream import UpstreamClient, create_upstream_client

log = logging.getLogger("aoai_gateway")


class Gateway:
    def __init__(
        self,
        settings: Settings,
        upstream_factory: Callable[[], UpstreamClient] | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.settings = settings
        self.access_log = access_log or default_access_log(settings.logging)
        self._factory = upstream_factory or (lambda: create_upstream_client(settings.upstream))
        self.metrics = GatewayMetrics() if settings.admin.metrics else None
        deployments = DeploymentRouter(settings.deployments, settings.routing)
        if self.metrics is not None:
            self.metrics.watch(deployments.deployments())
        self.service = ProxyService(
            deployments, self.metrics, log_bodies=settings.logging.log_bodies, upload_limits=upload_limits(settings)
        )
        self.managed: ManagedAccess | None = None
        self._started = False
        self.router = build_router(settings, self.service, lambda: self._started, self.metrics, lambda: self.managed)

    async def startup(self) -> None:
        if not self._started:
            if self.settings.auth == "keys":
                self.managed = await open_managed_access(self.settings)
                self.service.access = self.managed.control
            self.service.client = self._factory()
            self.service.clients = await start_local_speech(self.settings)  # loads local models once
            self._started = True

    async def shutdown(self) -> None:
        if self.access_log is not None:
            self.access_log.flush()
        if self.managed is not None:
            await self.managed.close()
            self.managed = None
            self.service.access = None
        for client in self.service.clients.values():
            await client.aclose()
        self.service.clients = {}
        if self._started and self.service.client is not None:
            self._started = False
            await self.service.client.aclose()
            self.service.client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started:  # servers without lifespan support
            await self.startup()
        started = time.perf_counter()
        request = Request(scope, receive)
        request_id = os.urandom(8).hex()
        status = 0
        sent = 0
        route = "-"

        async def send_counted(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"].append((b"x-gateway-request-id", request_id.encode()))
                deployment = request.state.get("deployment")
                if isinstance(deployment, str):  # which of the model's deployments answered
                    message["headers"].append((b"x-gateway-deployment", deployment.encode()))
            else:
                sent += len(message.get("body", b""))
            await send(message)

        try:
            matched, params = self.router.match(request.method, request.path)
            route = matched.template
            await matched.handler(request, send_counted, params)
        except GatewayError as exc:
            if status:
                log.warning("error after the response started: %s", exc.message)
            else:
                if isinstance(exc, UpstreamError):
                    log.warning("upstream failure: %s", exc.message)
                await send_error(send_counted, exc)
        except ClientDisconnected:
            status = status or 499
        except AbortResponse:
            status = status or 502
            raise
        except Exception:
            log.exception("unhandled error in %s %s", request.method, route)
            if status:
                raise
            await send_error(send_counted, GatewayError("The gateway had an internal error; it was logged."))
        finally:
            state = request.state
            if state.get("client_disconnected"):
                status = 499
            if self.managed is not None and route not in _UNLEDGERED:
                self.managed.ledger.record(_usage_row(state, route, status, time.perf_counter() - started))
            if self.metrics is not None:
                model = state.get("model")
                self.metrics.request(
                    route, model if isinstance(model, str) else None, status, time.perf_counter() - started
                )
            if self.access_log is not None:
                self.access_log.write(
                    {
                        "request_id": request_id,
                        "method": request.method,
                        "route": route,
                        "model": state.get("model"),
                        "deployment": state.get("deployment"),
                        "status": status,
                        "attempts": state.get("attempts"),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "upstream_ms": state.get("upstream_ms"),
                        "upstream_request_id": state.get("upstream_request_id"),
                        "stream_error": state.get("stream_error"),
                        "bytes_in": state.get("bytes_in", 0),
                        "bytes_out": sent,
                    }
                )


_UNLEDGERED = frozenset({"/healthz", "/readyz", "/metrics", "-"})


def _usage_row(state: dict[str, object], route: str, status: int, seconds: float) -> UsageRow:
    usage = state.get("usage")
    prompt, completion = usage if isinstance(usage, tuple) else (0, 0)
    audio = state.get("audio_seconds")

    def text(name: str) -> str | None:
        value = state.get(name)
        return value if isinstance(value, str) else None

    return UsageRow(
        at=time.time(),
        key_id=text("key_id"),
        event_id=text("event_id"),
        model=text("model"),
        deployment=text("deployment"),
        route=route,
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        audio_seconds=float(audio) if isinstance(audio, int | float) else 0.0,
        latency_ms=round(seconds * 1000, 3),
    )


def create_app(
    settings: Settings, upstream: UpstreamClient | None = None, access_log: AccessLog | None = None
) -> ASGIApp:
    """The gateway app, wrapped in CORS when `cors.enabled`."""
    gateway = Gateway(settings, (lambda: upstream) if upstream is not None else None, access_log)
    return CorsMiddleware(gateway, settings.cors) if settings.cors.enabled else gateway
