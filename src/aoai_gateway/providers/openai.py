"""Any OpenAI-compatible base URL (api.openai.com, vLLM, Ollama, another gateway): Bearer auth.

OpenAIProvider().url(dep, "chat/completions", [], None)   # -> {endpoint}/chat/completions
"""

from __future__ import annotations

from ..config import Deployment
from .base import HttpProvider, Query, with_query


class OpenAIProvider(HttpProvider):
    requires_key = True
    owned_by = "openai"

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        return with_query(f"{deployment.endpoint}/{operation}", query)

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        return with_query(f"{deployment.endpoint}/{path}", query)

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        return with_query(f"{deployment.endpoint}/realtime", [("model", deployment.deployment)])

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {key}")]

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        return deployment.deployment
