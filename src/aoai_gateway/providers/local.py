"""Local models served in-process (`provider: local`): the speech client, which routes on the request's deployment
and operation (the `local://` URL is only a label for logs); no auth.

client = await LocalProvider().open_client(settings, deployments, http)   # loads each model once
LocalProvider().url(dep, "audio/transcriptions", [], None)   # -> local://whisper-local/audio/transcriptions
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from ..config import Deployment, Settings
from ..config.speech import bundled_model_path, check_model_dir
from ..extras import needs
from ..upstream import UpstreamClient
from .base import Query


class LocalProvider:
    owned_by = "aoai-gateway"
    requires_key = False  # nothing upstream checks one
    needs_endpoint = False
    books_realtime_usage = True  # (it serves none)

    def checked(self, deployment: Deployment) -> dict[str, Any]:
        # A faster-whisper model directory (default: the bundled tiny.en), checked before anything loads it.
        if deployment.engine != "whisper":
            return {}  # a voice: eSpeak NG's data ships with its package
        return {"model_path": check_model_dir(deployment.model_path or bundled_model_path())}

    def version_label(self, deployment: Deployment) -> str:
        return "(in-process)"

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        return f"local://{quote(deployment.deployment, safe='')}/{operation}"

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        raise ValueError("local models hold no files or batches")  # settings never name one as files.deployment

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        return None  # speech models only

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return []

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        return None

    def upload_limit(self, settings: Settings) -> int:
        return settings.speech.max_upload_bytes  # no 25 MiB wall: long recordings are spooled, not held

    async def open_client(
        self, settings: Settings, deployments: Sequence[Deployment], http: UpstreamClient
    ) -> UpstreamClient:
        with needs("speech", "provider: local"):
            from ..speech.client import LocalSpeechClient  # faster-whisper, CTranslate2 and PyAV load only here

        client = LocalSpeechClient(deployments, settings.speech)
        await client.start()
        return client
