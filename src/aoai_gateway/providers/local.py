"""Local models served in-process (`provider: local`): a pseudo-URL the local speech client routes on, no auth.

LocalProvider().url(dep, "audio/transcriptions", [], None)   # -> local://whisper-local/audio/transcriptions
"""

from __future__ import annotations

from urllib.parse import quote

from ..config import Deployment
from .base import Query


class LocalProvider:
    owned_by = "aoai-gateway"
    requires_key = False  # nothing upstream checks one

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        return f"local://{quote(deployment.deployment, safe='')}/{operation}"

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return []

    def body_model(self, deployment: Deployment) -> str | None:
        return None
