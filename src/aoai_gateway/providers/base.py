"""A provider turns (deployment, operation) into an upstream URL, auth headers and the body's `model`, and
brings the client that reaches its deployments.

provider = PROVIDERS[deployment.provider]
url = provider.url(deployment, "chat/completions", query=[("api-version", "2024-10-21")])
client = await provider.open_client(settings, deployments, http)   # the shared HTTP pool, or an in-process model
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from ..config import Deployment, Settings
from ..upstream import UpstreamClient

Query = list[tuple[str, str]]


class Provider(Protocol):
    owned_by: str
    requires_key: bool  # False: the deployment serves callers that present no key (in-process models)
    needs_endpoint: bool  # False: served in-process, so a deployment names no endpoint
    # False: its realtime sessions call the gateway's own models, whose usage is booked as each call is made, so
    # the relay must not book their `response.done` again
    books_realtime_usage: bool

    def checked(self, deployment: Deployment) -> dict[str, Any]:
        """Settings fields this provider fills in or corrects (validated at load time); raise ValueError if unfit."""

    def version_label(self, deployment: Deployment) -> str:
        """What `config check` prints in its API-VERSION column."""

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        """The upstream URL for `operation` (e.g. "chat/completions"), with the client's other query items."""

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        """The URL of a resource operation (`files`, `batches/batch_1`) on the deployment's endpoint, no deployment
        in it; `path` comes from `operations.ResourceOperation.path` only."""

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        """The http(s) URL of a realtime session (a WebSocket) on this deployment; None when it serves none."""

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        """Headers that carry the upstream key."""

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        """The `model` the upstream must see in the body of `operation`, or None when the body's own is fine."""

    def upload_limit(self, settings: Settings) -> int:
        """The largest multipart upload its deployments take."""

    async def open_client(
        self, settings: Settings, deployments: Sequence[Deployment], http: UpstreamClient
    ) -> UpstreamClient:
        """The client for these deployments: `http` (the shared pool) or one of its own, opened and ready."""


class HttpProvider:
    """What the providers that speak HTTP share: the gateway's pooled client and Azure's 25 MiB upload wall."""

    needs_endpoint = True
    books_realtime_usage = True

    def checked(self, deployment: Deployment) -> dict[str, Any]:
        return {}

    def version_label(self, deployment: Deployment) -> str:
        return f"({deployment.api_style})"

    def upload_limit(self, settings: Settings) -> int:
        return settings.limits.max_audio_bytes

    async def open_client(
        self, settings: Settings, deployments: Sequence[Deployment], http: UpstreamClient
    ) -> UpstreamClient:
        return http


def with_query(url: str, query: Query) -> str:
    return f"{url}?{urlencode(query)}" if query else url
