"""Upstream HTTP clients, chosen by name from a registry (`upstream.client` in the settings).

client = create_upstream_client(settings.upstream, on_resend=lambda r: metrics.resend(r.deployment))  # in the loop
"""

from __future__ import annotations

from ..config import ConfigError, UpstreamSettings
from .base import (
    Frame,
    ResendHook,
    UpstreamClient,
    UpstreamClientFactory,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamWebSocket,
    WebSocketRequest,
)


def _aiohttp(settings: UpstreamSettings, on_resend: ResendHook | None = None) -> UpstreamClient:
    from .aiohttp_client import AiohttpUpstream

    return AiohttpUpstream(settings, on_resend)


def _httpx(settings: UpstreamSettings, on_resend: ResendHook | None = None) -> UpstreamClient:
    from ..extras import needs

    with needs("httpx", "upstream.client: httpx"):
        from .httpx_client import HttpxUpstream

    return HttpxUpstream(settings, on_resend)


UPSTREAM_CLIENTS: dict[str, UpstreamClientFactory] = {
    "aiohttp": _aiohttp,
    "httpx": _httpx,
}


def create_upstream_client(settings: UpstreamSettings, on_resend: ResendHook | None = None) -> UpstreamClient:
    try:
        factory = UPSTREAM_CLIENTS[settings.client]
    except KeyError:
        raise ConfigError(
            f"upstream.client {settings.client!r} is unknown; choose one of {', '.join(UPSTREAM_CLIENTS)}"
        ) from None
    return factory(settings, on_resend)


__all__ = [
    "UPSTREAM_CLIENTS",
    "Frame",
    "ResendHook",
    "UpstreamClient",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamWebSocket",
    "WebSocketRequest",
    "create_upstream_client",
]
