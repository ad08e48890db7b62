"""A provider turns (deployment, operation) into an upstream URL, auth headers and the body's `model`.

provider = PROVIDERS[deployment.provider]
url = provider.url(deployment, "chat/completions", query=[("api-version", "2024-10-21")])
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from ..config import Deployment

Query = list[tuple[str, str]]


class Provider(Protocol):
    owned_by: str
    requires_key: bool  # False: the deployment serves callers that present no key (in-process models)

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        """The upstream URL for `operation` (e.g. "chat/completions"), with the client's other query items."""

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        """Headers that carry the upstream key."""

    def body_model(self, deployment: Deployment) -> str | None:
        """The `model` the upstream must see in the body, or None when the body's own value is fine."""


def with_query(url: str, query: Query) -> str:
    return f"{url}?{urlencode(query)}" if query else url
