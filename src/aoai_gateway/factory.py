"""Everything the gateway is made of, built in one place and torn down in reverse.

    async with open_gateway(settings) as gateway:      # an ASGI handler, every part ready
        await gateway(scope, receive, send)

The order: the tracer (only with `tracing.enabled`: shut down last, so every span is exported); metrics and the
routing table; the access mode (`auth:`, its database, limiter and ledger); the pooled upstream HTTP client and
each provider's client (local models load here, once); the upstream credentials (keys, Entra ID); the proxy
service; with `assistant.enabled`, the assistant (its tools, MCP servers and sessions), calling that service
in-process; the routes and the WebSocket routes (realtime sessions, relayed upstream or, for `provider:
pipeline`, served in-process through that service); the listeners that hear about every finished
request (usage ledger, metrics, access log, traces). Nothing is filled in later: what a part needs, it is given
when it is made. Closing runs the same list backwards: the access log is flushed, the ledger written,
credentials, local models and the upstream pool closed, the last spans exported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from .access import ACCESS_MODES, ManagedAccess
from .app import Gateway, InProcessCaller
from .balancing import DeploymentRouter
from .balancing.affinity import ResponseAffinity, needs_placements
from .config import Settings
from .exchange import ExchangeListener
from .extras import needs
from .http.paths import Handler, Router
from .logs import AccessLog, default_access_log
from .metrics import GatewayMetrics
from .providers import open_clients, upload_limits
from .proxy import ProxyService, RequestHeaderRules
from .routes import build_router, build_socket_router
from .store import Database, connect_database, migrate
from .store.placements import ResponsePlacements
from .upstream import UpstreamClient, create_upstream_client
from .upstream.auth import open_upstream_auth

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from .assistant.service import AssistantService
    from .console.calls import CallArchive
    from .tracing import GatewayTracer


@asynccontextmanager
async def open_gateway(
    settings: Settings,
    *,
    upstream: UpstreamClient | None = None,
    access_log: AccessLog | None = None,
    span_exporter: SpanExporter | None = None,
) -> AsyncIterator[Gateway]:
    """The built gateway; `upstream` replaces the pooled HTTP client (tests), `access_log` the stderr one,
    `span_exporter` the OTLP one (with `tracing.enabled`)."""
    async with AsyncExitStack() as stack:
        tracer: GatewayTracer | None = None
        if settings.tracing.enabled:  # off: nothing of OpenTelemetry is imported, no request does tracing work
            with needs("otel", "tracing.enabled"):
                from .tracing import open_tracer

                tracer = open_tracer(settings.tracing, stack, span_exporter)
        metrics = GatewayMetrics() if settings.admin.metrics else None
        deployments = DeploymentRouter(settings.deployments, settings.routing)
        if metrics is not None:
            metrics.watch(deployments.deployments())
        access = await ACCESS_MODES[settings.auth](settings)
        stack.push_async_callback(access.close)
        # A request resent on a fresh connection (only when none of it was written) is counted, never hidden.
        on_resend = (lambda sent: metrics.resend(sent.deployment)) if metrics is not None else None
        on_waiting = metrics.pool_waiting.set if metrics is not None else None
        http = upstream if upstream is not None else create_upstream_client(settings.upstream, on_resend, on_waiting)
        stack.push_async_callback(http.aclose)
        clients = await open_clients(settings, http, stack)
        affinity = await _open_affinity(settings, deployments, access, stack)
        # The keys the gateway holds and its Entra ID credentials (each opened once, closed with the gateway).
        upstream_auth = await open_upstream_auth(deployments.deployments(), stack)
        if tracer is not None:
            clients = tracer.wrap(clients)  # each upstream attempt is a span, its context sent as traceparent
        service = ProxyService(
            deployments,
            access,
            clients,
            RequestHeaderRules(settings.upstream.forward_headers),
            upstream_auth=upstream_auth,
            metrics=metrics,
            upload_limits=upload_limits(settings),
            log_bodies=settings.logging.log_bodies,
            affinity=affinity,
        )
        listeners: list[ExchangeListener] = [access]
        if metrics is not None:
            metrics.streams_in_flight.set_function(lambda: service.streams_in_flight)
            listeners.append(metrics)
        lines = access_log if access_log is not None else default_access_log(settings.logging)
        if lines is not None:
            stack.callback(lines.flush)
            listeners.append(lines)
        if tracer is not None:
            listeners.append(tracer)  # closes the request's span (the last listener: nothing is added after it)
        assistant = await _open_assistant(settings, service, listeners, tracer, access, stack)
        archive = await _open_call_archive(settings, access, stack)
        relay = _console_relay(settings, access, stack)
        router = build_router(settings, service, access, metrics, assistant, archive, relay)
        in_process = _realtime_pipelines(settings, InProcessCaller(service, listeners, tracer), stack)
        yield Gateway(
            router,
            service,
            listeners,
            deployment_header=settings.admin.deployment_header,
            sockets=build_socket_router(settings, service, metrics, router, in_process),
            tracer=tracer,
        )


async def _open_assistant(
    settings: Settings,
    service: ProxyService,
    listeners: list[ExchangeListener],
    tracer: GatewayTracer | None,
    access: object,
    stack: AsyncExitStack,
) -> AssistantService | None:
    """With `assistant.enabled`: the assistant, calling the gateway's own service in-process. Its sessions persist
    in the keys mode's database, or (`assistant.persist_sessions: true`) in the configured one."""
    config = settings.assistant
    if not config.enabled:
        return None
    with needs("assistant", "assistant.enabled"):
        from .assistant.service import open_assistant

    db: Database | None = None
    if config.persist_sessions is not False and isinstance(access, ManagedAccess):
        db = access.db
    elif config.persist_sessions:
        db = await connect_database(settings.database_url)
        stack.push_async_callback(db.close)
        await migrate(db)
    caller = InProcessCaller(service, listeners, tracer)
    return await stack.enter_async_context(open_assistant(settings, caller, db))


async def _open_call_archive(settings: Settings, access: object, stack: AsyncExitStack) -> CallArchive | None:
    """The console's calls explorer reads the pipeline's store: `calls.database_url`, or by default the keys
    mode's database (which the pipeline shares when `calls.database_url` is empty). Without either, no explorer."""
    if not settings.console_enabled:
        return None
    from .calls.playback import Playback
    from .calls.store import CallStore
    from .console.calls import CallArchive, schema_fields

    calls = settings.calls
    if calls.database_url:
        db = await connect_database(calls.database_url)
        stack.push_async_callback(db.close)
        await migrate(db)
    elif isinstance(access, ManagedAccess):
        db = access.db
    else:
        return None
    playback = await Playback.open(calls)
    stack.push_async_callback(playback.aclose)
    fields = await asyncio.to_thread(schema_fields, calls.schema_path)
    return CallArchive(CallStore(db, "console", calls.lease_seconds), playback, calls, fields)


def _console_relay(settings: Settings, access: object, stack: AsyncExitStack) -> Handler | None:
    """With the console on, `console.process`, `auth: keys` (sessions in the database both processes read) and a
    master key (from which both derive the CSRF secret): the relay of the read-only pages to the page process,
    which starts with the first of them."""
    wanted = settings.console_enabled and settings.console.process and settings.admin.master_key is not None
    if not wanted or not isinstance(access, ManagedAccess):
        return None
    from .console.relay import PageProcess, PageRelay, relay_client

    relay = PageRelay(PageProcess(settings), relay_client(settings), before=access.ledger.flush)
    stack.push_async_callback(relay.aclose)
    return relay.forward


@asynccontextmanager
async def open_console_pages(settings: Settings) -> AsyncIterator[Router]:
    """The page process's side (console/worker.py): the console's routes over the database and calls archive the
    gateway uses, rendered here (no relay), and nothing of the proxy (no upstream client, no model)."""
    from .console import add_console_routes

    async with AsyncExitStack() as stack:
        access = await ACCESS_MODES[settings.auth](settings)
        stack.push_async_callback(access.close)
        if not isinstance(access, ManagedAccess):
            raise ValueError("the console's page process serves `auth: keys` only")
        archive = await _open_call_archive(settings, access, stack)
        router = Router()
        deployments = DeploymentRouter(settings.deployments, settings.routing)  # its page stays in the gateway
        add_console_routes(router, settings, access, deployments, archive)
        yield router


def _realtime_pipelines(
    settings: Settings, caller: InProcessCaller, stack: AsyncExitStack
) -> dict[str, UpstreamClient]:
    """With a `provider: pipeline` deployment: the client of its realtime sessions, calling the service
    in-process (the service holds a placeholder that refuses HTTP calls; see providers/pipeline.py)."""
    pipelines = [d for d in settings.deployments if d.provider == "pipeline"]
    if not pipelines:
        return {}
    from .realtime_pipeline import PipelineClient

    client = PipelineClient(caller, pipelines)
    stack.push_async_callback(client.aclose)  # ends the sessions still open, before the service closes
    return {"pipeline": client}


async def _open_affinity(
    settings: Settings, router: DeploymentRouter, access: object, stack: AsyncExitStack
) -> ResponseAffinity:
    """Where stored responses live: in the keys mode's database (ids are bound to keys there), or in the
    configured database when some model spans several resources; otherwise nothing is remembered."""
    ttl = settings.responses.placement_ttl_days * 86400
    if isinstance(access, ManagedAccess):
        return ResponseAffinity(router, ResponsePlacements(access.db, ttl), bind_keys=True)
    if not needs_placements(list(settings.deployments)):
        return ResponseAffinity(router, None, bind_keys=False)
    db = await connect_database(settings.database_url)
    stack.push_async_callback(db.close)
    await migrate(db)
    return ResponseAffinity(router, ResponsePlacements(db, ttl), bind_keys=False)


__all__ = ["open_console_pages", "open_gateway"]
