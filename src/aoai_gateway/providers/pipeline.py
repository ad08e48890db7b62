"""Voice agents served as the Realtime API in-process (`provider: pipeline`): Whisper, a chat model and a voice
from the gateway's own deployments behind one realtime session (realtime_pipeline/).

PipelineProvider().realtime_url(dep, None)    # -> pipeline://voice-agent/realtime (a label for logs)

Its sessions call the gateway's service, which is built after the providers' clients: `open_client` gives the
service a client that refuses HTTP calls (a pipeline answers no chat or audio request of its own), and the
factory hands the realtime relay the session client (`realtime_pipeline.PipelineClient`) once the service exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import quote

from ..config import Deployment, Settings
from ..errors import InvalidRequest
from ..upstream import UpstreamClient, UpstreamRequest, UpstreamWebSocket, WebSocketRequest
from .base import Query


class PipelineProvider:
    owned_by = "aoai-gateway"
    requires_key = False  # its models check the caller's key themselves
    needs_endpoint = False
    books_realtime_usage = False

    def checked(self, deployment: Deployment) -> dict[str, Any]:
        if deployment.pipeline is None:
            raise ValueError("provider: pipeline needs a pipeline section naming its three models")
        return {}

    def version_label(self, deployment: Deployment) -> str:
        return "(in-process)"

    def url(self, deployment: Deployment, operation: str, query: Query, client_api_version: str | None) -> str:
        return f"pipeline://{quote(deployment.deployment, safe='')}/{operation}"

    def resource_url(self, deployment: Deployment, path: str, query: Query, client_api_version: str | None) -> str:
        raise ValueError("pipelines hold no files or batches")  # settings never name one as files.deployment

    def realtime_url(self, deployment: Deployment, client_api_version: str | None) -> str | None:
        return self.url(deployment, "realtime", [], client_api_version)

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return []  # the key travels as `WebSocketRequest.caller_key`, never as a header

    def body_model(self, deployment: Deployment, operation: str = "") -> str | None:
        return None

    def upload_limit(self, settings: Settings) -> int:
        return settings.limits.max_audio_bytes

    async def open_client(
        self, settings: Settings, deployments: Sequence[Deployment], http: UpstreamClient
    ) -> UpstreamClient:
        return RealtimeOnly()


class RealtimeOnly:
    """What the proxy service holds for pipelines: every HTTP call is refused as the client's mistake."""

    async def send(self, request: UpstreamRequest, *, stream: bool) -> NoReturn:
        raise InvalidRequest(
            f"The model behind {request.deployment!r} is a realtime voice agent: connect to /v1/realtime instead.",
            param="model",
        )

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        raise InvalidRequest("Realtime pipeline sessions are opened by the relay's own client.")

    async def aclose(self) -> None:
        return None
