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
    WaitingHook,
    WebSocketRequest,
)


def _httptools(
    settings: UpstreamSettings, on_resend: ResendHook | None = None, on_waiting: WaitingHook | None = None
) -> UpstreamClient:
    if settings.http_proxy or settings.socks_proxy:
        # Egress through a proxy (HTTP CONNECT, SOCKS5) is aiohttp's: this client speaks to upstreams directly.
        return _aiohttp(settings, on_resend, on_waiting)
    from .httptools_client import HttptoolsUpstream

    return HttptoolsUpstream(settings, on_resend, on_waiting)


def _aiohttp(
    settings: UpstreamSettings, on_resend: ResendHook | None = None, on_waiting: WaitingHook | None = None
) -> UpstreamClient:
    from .aiohttp_client import AiohttpUpstream

    return AiohttpUpstream(settings, on_resend)


def _httpx(
    settings: UpstreamSettings, on_resend: ResendHook | None = None, on_waiting: WaitingHook | None = None
) -> UpstreamClient:
    from ..extras import needs

    with needs("httpx", "upstream.client: httpx"):
        from .httpx_client import HttpxUpstream

    return HttpxUpstream(settings, on_resend)


UPSTREAM_CLIENTS: dict[str, UpstreamClientFactory] = {
    "httptools": _httptools,
    "aiohttp": _aiohttp,
    "httpx": _httpx,
}


def create_upstream_client(
    settings: UpstreamSettings, on_resend: ResendHook | None = None, on_waiting: WaitingHook | None = None
) -> UpstreamClient:
    """The client `upstream.client` names; `on_waiting` hears how many requests wait for a pooled connection
    (only `httptools` bounds that wait; aiohttp and httpx queue without a bound of their own)."""
    try:
        factory = UPSTREAM_CLIENTS[settings.client]
    except KeyError:
        raise ConfigError(
            f"upstream.client {settings.client!r} is unknown; choose one of {', '.join(UPSTREAM_CLIENTS)}"
        ) from None
    return factory(settings, on_resend, on_waiting)


__all__ = [
    "UPSTREAM_CLIENTS",
    "Frame",
    "ResendHook",
    "UpstreamClient",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamWebSocket",
    "WaitingHook",
    "WebSocketRequest",
    "create_upstream_client",
]
