"""The relay's client for `provider: pipeline` deployments: each "connection" is a session served in-process.

client = PipelineClient(InProcessCaller(service, listeners, tracer), pipeline_deployments)
session = await client.connect_websocket(request, timeout)      # request.deployment names the pipeline
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..app import InProcessCaller
from ..config import Deployment
from ..errors import InvalidRequest
from ..upstream import UpstreamRequest, UpstreamResponse, UpstreamWebSocket, WebSocketRequest
from .dialect import speaks_beta
from .models import PipelineModels
from .session import PipelineSession


class PipelineClient:
    def __init__(self, caller: InProcessCaller, deployments: Iterable[Deployment]) -> None:
        self._pipelines = {
            d.deployment: (PipelineModels(caller, d.pipeline), d) for d in deployments if d.pipeline is not None
        }
        self._open: set[PipelineSession] = set()

    async def send(self, request: UpstreamRequest, *, stream: bool) -> UpstreamResponse:
        raise InvalidRequest("A realtime voice agent answers realtime sessions only.", param="model")

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        models, deployment = self._pipelines[request.deployment]
        assert deployment.pipeline is not None  # kept only with one
        session = PipelineSession(
            models,
            deployment.pipeline,
            deployment.model,
            request.caller_key,
            on_close=self._open.discard,
            beta=speaks_beta(request.headers),
        )
        self._open.add(session)
        return session

    async def aclose(self) -> None:
        await asyncio.gather(*(session.close(1001, "the gateway is shutting down") for session in list(self._open)))
