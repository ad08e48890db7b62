"""Azure-native routes, so `AzureOpenAI` clients can point at the gateway too.

POST /openai/deployments/{deployment}/{operation}?api-version=...   (the client's api-version is kept)
POST /openai/v1/{operation}                                         (deployment in the body's `model`)
"""

from __future__ import annotations

from ..config import BodyLimits
from ..errors import InvalidRequest
from ..http.asgi import Send
from ..http.request import Request
from ..http.routing import Router
from ..proxy import ProxyService
from .calls import ANY, read_call


def add_azure_routes(router: Router, service: ProxyService, limits: BodyLimits) -> None:
    async def deployments(request: Request, send: Send, params: dict[str, str]) -> None:
        query = request.query
        api_version = next((v for k, v in query if k == "api-version"), None)
        if not api_version:
            # Azure answers 404 "Resource not found" here; a precise 400 helps more and is just as final.
            raise InvalidRequest(
                "The api-version query parameter is required on Azure deployment routes.",
                param="api-version",
                code="missing_required_parameter",
            )
        call = await read_call(
            request, limits, params["operation"], ANY, model=params["deployment"], max_upload=service.max_upload_bytes
        )
        call.client_api_version = api_version
        await service.forward(request, send, call)

    async def v1(request: Request, send: Send, params: dict[str, str]) -> None:
        call = await read_call(request, limits, params["operation"], ANY, max_upload=service.max_upload_bytes)
        call.client_api_version = next((v for k, v in request.query if k == "api-version"), None)
        await service.forward(request, send, call)

    router.add("/openai/deployments/{deployment}/{operation:path}", ["POST"], deployments)
    router.add("/openai/v1/{operation:path}", ["POST"], v1)
