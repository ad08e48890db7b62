"""Local models served in-process (`provider: local`): speech (faster-whisper, eSpeak NG) and chat (llama.cpp),
each engine's client routing on the request's deployment and operation (the `local://` URL is only a label for
logs); no auth.

client = await LocalProvider().open_client(settings, deployments, http)   # loads each model once
LocalProvider().url(dep, "audio/transcriptions", [], None)   # -> local://whisper-local/audio/transcriptions
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from ..config import Deployment, Settings
from ..config.local_llm import check_gguf_file
from ..config.speech import bundled_model_path, check_model_dir
from ..extras import needs
from ..upstream import UpstreamClient, UpstreamRequest, UpstreamResponse, UpstreamWebSocket, WebSocketRequest
from .base import Query

# engine -> the settings it fills in or corrects, checked before anything loads a model.
_CHECKS: dict[str, Callable[[Deployment], dict[str, Any]]] = {
    # A faster-whisper model directory (default: the bundled tiny.en).
    "whisper": lambda d: {"model_path": check_model_dir(d.model_path or bundled_model_path())},
    "espeak-ng": lambda d: {},  # a voice: eSpeak NG's data ships with its package
    "llama.cpp": lambda d: {"model_path": check_gguf_file(d.model_path)},  # a GGUF file; nothing is downloaded
}


class LocalProvider:
    owned_by = "aoai-gateway"
    requires_key = False  # nothing upstream checks one
    needs_endpoint = False
    books_realtime_usage = True  # (it serves none)

    def checked(self, deployment: Deployment) -> dict[str, Any]:
        return _CHECKS[deployment.engine](deployment)

    def version_label(self, deployment: Deployment) -> str:
        return "(in-process)"

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        return f"local://{quote(deployment.deployment, safe='')}/{operation}"

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        raise ValueError("local models hold no files or batches")  # settings never name one as files.deployment

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        return None  # no realtime sessions

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return []

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        return None

    def upload_limit(self, settings: Settings) -> int:
        return settings.speech.max_upload_bytes  # no 25 MiB wall: long recordings are spooled, not held

    async def open_client(
        self, settings: Settings, deployments: Sequence[Deployment], http: UpstreamClient
    ) -> UpstreamClient:
        chat = [d for d in deployments if d.engine == "llama.cpp"]
        speech = [d for d in deployments if d.engine != "llama.cpp"]
        clients: list[tuple[list[Deployment], UpstreamClient]] = []
        try:
            if speech:
                with needs("speech", "provider: local"):
                    from ..speech.client import LocalSpeechClient  # faster-whisper, CTranslate2, PyAV load only here

                speech_client = LocalSpeechClient(speech, settings.speech)
                clients.append((speech, speech_client))
                await speech_client.start()
            if chat:
                with needs("local-llm", "engine: llama.cpp"):
                    from ..llm.client import LocalChatClient  # llama.cpp loads only here

                chat_client = LocalChatClient(chat, settings.local_llm)
                clients.append((chat, chat_client))
                await chat_client.start()
        except BaseException:
            for _, client in reversed(clients):
                await client.aclose()
            raise
        return clients[0][1] if len(clients) == 1 else LocalModels(clients)


class LocalModels:
    """The local engines' clients behind the one `local` provider: each request goes to its deployment's."""

    def __init__(self, clients: list[tuple[list[Deployment], UpstreamClient]]) -> None:
        self._clients = [client for _, client in clients]
        self._routes = {d.deployment: client for deployments, client in clients for d in deployments}

    async def send(self, request: UpstreamRequest, *, stream: bool) -> UpstreamResponse:
        return await self._routes.get(request.deployment, self._clients[0]).send(request, stream=stream)

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        return await self._clients[0].connect_websocket(request, timeout)

    async def aclose(self) -> None:
        for client in reversed(self._clients):
            await client.aclose()
