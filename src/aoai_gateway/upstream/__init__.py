"""Upstream HTTP clients, chosen by name from a registry (`upstream.client` in the settings).

client = create_upstream_client(settings.upstream)   # inside the running event loop
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import ConfigError, UpstreamSettings
from .base import UpstreamClient, UpstreamRequest, UpstreamResponse


def _aiohttp(settings: UpstreamSettings) -> UpstreamClient:
    from .aiohttp_client import AiohttpUpstream

    return AiohttpUpstream(settings)


def _httpx(settings: UpstreamSettings) -> UpstreamClient:
    from .httpx_client import HttpxUpstream

    return HttpxUpstream(settings)


UPSTREAM_CLIENTS: dict[str, Callable[[UpstreamSettings], UpstreamClient]] = {
    "aiohttp": _aiohttp,
    "httpx": _httpx,
}


def create_upstream_client(settings: UpstreamSettings) -> UpstreamClient:
    try:
        factory = UPSTREAM_CLIENTS[settings.client]
    except KeyError:
        raise ConfigError(
            f"upstream.client {settings.client!r} is unknown; choose one of {', '.join(UPSTREAM_CLIENTS)}"
        ) from None
    return factory(settings)


__all__ = ["UPSTREAM_CLIENTS", "UpstreamClient", "UpstreamRequest", "UpstreamResponse", "create_upstream_client"]
