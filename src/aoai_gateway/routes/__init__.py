"""All routes, assembled into one router for the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..access import Access, ManagedAccess
from ..config import Settings
from ..console import add_console_routes
from ..http.paths import Handler, Router, SocketRouter
from ..metrics import GatewayMetrics
from ..proxy import ProxyService
from ..proxy.client_secrets import ClientSecrets
from ..proxy.files import FilesService
from ..proxy.realtime import RealtimeRelay
from ..store.owners import ObjectOwners
from ..upstream import UpstreamClient
from .admin import add_admin_routes
from .azure_api import add_azure_routes
from .events import add_event_routes
from .files_api import add_files_routes
from .info import add_info_routes
from .keys_admin import add_key_routes
from .openai_api import add_openai_routes
from .realtime import add_realtime_routes
from .responses_api import add_responses_routes

if TYPE_CHECKING:
    from ..assistant.service import AssistantService  # the assistant extra, only with assistant.enabled
    from ..console.calls import CallArchive


def build_router(
    settings: Settings,
    service: ProxyService,
    access: Access,
    metrics: GatewayMetrics | None,
    assistant: AssistantService | None = None,
    calls: CallArchive | None = None,
    console_relay: Handler | None = None,
) -> Router:
    managed = access if isinstance(access, ManagedAccess) else None  # the stores behind keys and events
    router = Router()
    add_info_routes(router, settings, access)
    add_admin_routes(router, settings.admin, service.router, metrics)
    add_key_routes(router, settings.admin, managed)
    add_event_routes(router, settings.admin, managed)
    owners = ObjectOwners(managed.db) if managed is not None else None
    add_files_routes(router, settings.api_base, FilesService(settings, service, owners))
    if assistant is not None:
        from .assistant_api import add_assistant_routes

        add_assistant_routes(router, settings.api_base, access, assistant)
    add_openai_routes(router, settings.api_base, service, settings.limits)
    # After the generic create route (it adds api-version handling), before Azure's catch-all v1 pattern.
    add_responses_routes(router, settings.api_base, service, settings.limits)
    add_azure_routes(router, service, settings.limits)
    if settings.console_enabled:
        add_console_routes(router, settings, managed, service.router, calls, console_relay)
    return router


def build_socket_router(
    settings: Settings,
    service: ProxyService,
    metrics: GatewayMetrics | None,
    router: Router,
    in_process: Mapping[str, UpstreamClient] | None = None,
) -> SocketRouter:
    """The WebSocket routes (the Realtime API), and the HTTP routes that go with them (added to `router`);
    `in_process` (provider -> client) serves realtime sessions of providers that call the service themselves."""
    sockets = SocketRouter()
    relay = RealtimeRelay(
        service.router,
        service.access,
        {**service.clients, **(in_process or {})},
        service.headers,
        service.upstream_credentials,
        settings.realtime,
        settings.upstream.timeouts,
        metrics=metrics,
    )
    secrets = ClientSecrets(
        service.router,
        service.access,
        service.clients,
        service.headers,
        service.upstream_credentials,
        metrics=metrics,
    )
    add_realtime_routes(router, sockets, settings.api_base, relay, secrets, settings.limits)
    return sockets


__all__ = ["build_router", "build_socket_router"]
