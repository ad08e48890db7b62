"""Azure-native routes, so `AzureOpenAI` clients can point at the gateway too.

POST /openai/deployments/{deployment}/{operation}?api-version=...   (the client's api-version is kept)
POST /openai/v1/{operation}                                         (deployment in the body's `model`)

`{operation}` must be one of the known operations (operations.py) and `{deployment}` a configured deployment or
model: the upstream URL is built from those names, never from the client's path text.
"""

from __future__ import annotations

from ..config import BodyLimits
from ..errors import InvalidRequest
from ..http.asgi import Send
from ..http.paths import Router
from ..http.request import Request
from ..operations import operation_kind
from ..proxy import ProxyService
from .bodies import read_call


def add_azure_routes(router: Router, service: ProxyService, limits: BodyLimits) -> None:
    access = service.access

    async def deployments(request: Request, send: Send, params: dict[str, str]) -> None:
        kind = operation_kind(params["operation"], request.method, request.path)
        api_version = next((v for k, v in request.query if k == "api-version"), None)
        if not api_version:
            # Azure answers 404 "Resource not found" here; a precise 400 helps more and is just as final.
            raise InvalidRequest(
                "The api-version query parameter is required on Azure deployment routes.",
                param="api-version",
                code="missing_required_parameter",
            )
        await access.authenticate(request)
        call = await read_call(
            request, limits, params["operation"], kind, model=params["deployment"], max_upload=service.max_upload_bytes
        )
        call.client_api_version = api_version
        await service.forward(request, send, call)

    async def v1(request: Request, send: Send, params: dict[str, str]) -> None:
        kind = operation_kind(params["operation"], request.method, request.path)
        await access.authenticate(request)
        call = await read_call(request, limits, params["operation"], kind, max_upload=service.max_upload_bytes)
        call.client_api_version = next((v for k, v in request.query if k == "api-version"), None)
        await service.forward(request, send, call)

    router.add("/openai/deployments/{deployment}/{operation:path}", ["POST"], deployments)
    router.add("/openai/v1/{operation:path}", ["POST"], v1)
