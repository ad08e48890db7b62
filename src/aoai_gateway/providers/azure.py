"""Azure OpenAI: deployment URLs with exactly one `api-version`, or the v1 surface; `api-key` auth.

AzureProvider().url(dep, "embeddings", [], None)
# -> https://res.openai.azure.com/prefix/openai/deployments/embed/embeddings?api-version=2024-10-21
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ..config import Deployment
from ..operations import is_responses
from .base import HttpProvider, Query, with_query

# A dated version (2024-10-21, 2025-04-01-preview). The v1 surface's `preview` and `latest` mean nothing on
# deployment routes, which answer them with 400 "API version not supported": the configured version goes instead.
_DATED = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")


class AzureProvider(HttpProvider):
    requires_key = True
    owned_by = "azure-openai"

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        if is_responses(operation):
            # Azure keeps Responses off the deployment routes: the deployment is named in the body's `model`.
            if deployment.responses_route == "dated":
                version = _dated(client_api_version) or deployment.api_version
                return with_query(f"{deployment.endpoint}/openai/{operation}", [*query, ("api-version", version)])
            items = [*query, ("api-version", client_api_version)] if client_api_version else query
            return with_query(f"{deployment.endpoint}/openai/v1/{operation}", items)
        if deployment.api_style == "v1":
            # The v1 surface names the deployment in the body; api-version only if the client chose one.
            items = [*query, ("api-version", client_api_version)] if client_api_version else query
            return with_query(f"{deployment.endpoint}/openai/v1/{operation}", items)
        name = quote(deployment.deployment, safe="")
        api_version = _dated(client_api_version) or deployment.api_version
        return with_query(
            f"{deployment.endpoint}/openai/deployments/{name}/{operation}", [*query, ("api-version", api_version)]
        )

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        if deployment.api_style == "v1":
            items = [*query, ("api-version", client_api_version)] if client_api_version else query
            return with_query(f"{deployment.endpoint}/openai/v1/{path}", items)
        # The dated surface needs a dated version: the client's (from the dated surface) or the configured one.
        api_version = client_api_version or deployment.api_version
        return with_query(f"{deployment.endpoint}/openai/{path}", [*query, ("api-version", api_version)])

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        # GA realtime lives on the v1 surface; a deployment with `realtime_api_version` uses the dated (preview)
        # route, with the client's own version when it came on that route (as on the deployments routes).
        if deployment.realtime_api_version is None:
            return with_query(f"{deployment.endpoint}/openai/v1/realtime", [("model", deployment.deployment)])
        version = client_api_version or deployment.realtime_api_version
        return with_query(
            f"{deployment.endpoint}/openai/realtime", [("api-version", version), ("deployment", deployment.deployment)]
        )

    def version_label(self, deployment: Deployment) -> str:
        return deployment.api_version if deployment.api_style == "deployments" else f"({deployment.api_style})"

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return [("api-key", key)]

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        return deployment.deployment if deployment.api_style == "v1" or is_responses(operation) else None


def _dated(version: str | None) -> str | None:
    return version if version is not None and _DATED.fullmatch(version) else None
