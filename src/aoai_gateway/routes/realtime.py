"""The Realtime API: WebSocket sessions on three surfaces, and ephemeral client keys.

WebSocket {api_base}/realtime?model=...                              (OpenAI, and `OpenAI(base_url=...)`)
WebSocket /openai/v1/realtime?model=...                              (Azure's v1 surface)
WebSocket /openai/realtime?api-version=...&deployment=...            (Azure's dated surface, `AzureOpenAI`)
POST      {api_base}/realtime/client_secrets, /openai/v1/realtime/client_secrets
"""

from __future__ import annotations

from ..config import BodyLimits
from ..errors import InvalidRequest, UnsupportedMediaType
from ..http.asgi import Send
from ..http.paths import Router, SocketRouter
from ..http.request import Request
from ..http.websocket import WebSocket
from ..proxy.client_secrets import ClientSecrets
from ..proxy.realtime import RealtimeRelay


def _query(socket: WebSocket, name: str) -> str | None:
    return next((v for k, v in socket.request.query if k == name), None)


def add_realtime_routes(
    router: Router,
    sockets: SocketRouter,
    api_base: str,
    relay: RealtimeRelay,
    secrets: ClientSecrets,
    limits: BodyLimits,
) -> None:
    async def session(socket: WebSocket) -> None:
        # A v1 client's api-version (e.g. `preview`) is for the v1 surface: it never reaches a dated upstream.
        await relay.session(socket, _query(socket, "model"), None)

    async def dated_session(socket: WebSocket) -> None:
        api_version = _query(socket, "api-version")
        if not api_version:
            raise InvalidRequest(
                "The api-version query parameter is required on Azure's /openai/realtime route.",
                param="api-version",
                code="missing_required_parameter",
            )
        await relay.session(socket, _query(socket, "deployment") or _query(socket, "model"), api_version)

    async def client_secrets(request: Request, send: Send, params: dict[str, str]) -> None:
        await secrets.access.authenticate(request)  # before any body byte is read
        if request.content_type not in ("application/json", ""):
            raise UnsupportedMediaType(request.content_type, "application/json")
        body = await request.body(limits.max_json_bytes)
        request.exchange.bytes_in = len(body)
        await secrets.create(request, send, body)

    sockets.add(f"{api_base}/realtime", session)
    sockets.add("/openai/v1/realtime", session)
    sockets.add("/openai/realtime", dated_session)
    router.add(f"{api_base}/realtime/client_secrets", ["POST"], client_secrets)
    router.add("/openai/v1/realtime/client_secrets", ["POST"], client_secrets)
