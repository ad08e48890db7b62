"""The OpenAI API surface under `api_base` (default /v1): authenticate, parse, forward, done.

POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/engines/{model}/embeddings,
     /v1/images/generations, /v1/audio/speech, /v1/audio/transcriptions, /v1/audio/translations
"""

from __future__ import annotations

from ..config import BodyLimits
from ..http.asgi import Send
from ..http.paths import Handler, Router
from ..http.request import Request
from ..operations import OPERATIONS, BodyKind
from ..proxy import ProxyService
from .bodies import read_call


def add_openai_routes(router: Router, api_base: str, service: ProxyService, limits: BodyLimits) -> None:
    access = service.access

    def forwarder(operation: str, kind: BodyKind) -> Handler:
        async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
            # The key is checked from the headers before any body byte is read: a refused caller costs nothing.
            await access.authenticate(request)
            call = await read_call(
                request, limits, operation, kind, model=params.get("model"), max_upload=service.max_upload_bytes
            )
            await service.forward(request, send, call)

        return handle

    for operation, kind in OPERATIONS.items():
        router.add(f"{api_base}/{operation}", ["POST"], forwarder(operation, kind))
    # The legacy engines route (older LangChain and openai<1.0) names the model in the path.
    router.add(f"{api_base}/engines/{{model}}/embeddings", ["POST"], forwarder("embeddings", BodyKind.JSON))
