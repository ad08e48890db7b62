"""The Responses API on every surface: create, and the operations on one stored response.

POST   {base}/responses                         create (JSON or SSE), model in the body
GET    {base}/responses/{response_id}           retrieve
DELETE {base}/responses/{response_id}           delete
GET    {base}/responses/{response_id}/input_items
POST   {base}/responses/{response_id}/cancel    (background responses)

`{base}` is `api_base` (/v1), `/openai/v1` (Azure's v1 surface) and `/openai` (Azure's dated surface, which
wants `?api-version=`). The id is checked against a strict pattern before it is placed in an upstream path
(operations.py); the upstream URL never holds the client's path text.
"""

from __future__ import annotations

from ..api_call import resource_call
from ..config import BodyLimits
from ..errors import InvalidRequest
from ..http.asgi import Send
from ..http.paths import Handler, Router
from ..http.request import Request
from ..operations import RESPONSE_OPERATIONS, BodyKind, ResponseOperation
from ..proxy import ProxyService
from .bodies import read_call

_DATED_BASE = "/openai"


def add_responses_routes(router: Router, api_base: str, service: ProxyService, limits: BodyLimits) -> None:
    access = service.access

    def create(base: str) -> Handler:
        async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
            api_version = _api_version(request, required=base == _DATED_BASE)
            await access.authenticate(request)
            call = await read_call(request, limits, "responses", BodyKind.JSON)
            call.client_api_version = api_version
            await service.forward(request, send, call)

        return handle

    def on_one(base: str, operation: ResponseOperation) -> Handler:
        async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
            api_version = _api_version(request, required=base == _DATED_BASE)
            path = operation.path(params["response_id"])  # InvalidRequest unless a well-formed id
            await access.authenticate(request)
            if operation.method == "POST":
                await request.body(limits.max_json_bytes)  # a cancel's body, if any, is read and not forwarded
            call = resource_call(path, operation.method, params["response_id"])
            call.client_api_version = api_version
            call.query = [(k, v) for k, v in request.query if k in _LIST_QUERY]
            await service.forward(request, send, call)

        return handle

    for base in dict.fromkeys((api_base, "/openai/v1", _DATED_BASE)):
        router.add(f"{base}/responses", ["POST"], create(base))
        by_path: dict[str, dict[str, Handler]] = {}
        for operation in RESPONSE_OPERATIONS.values():
            template = base + "/" + operation.template.replace("{id}", "{response_id}")
            by_path.setdefault(template, {})[operation.method] = on_one(base, operation)
        for template, handlers in by_path.items():
            router.add(template, handlers, _by_method(handlers))


# input_items pages with these; anything else the client adds stays here.
_LIST_QUERY = frozenset({"after", "before", "limit", "order", "include[]", "include"})


def _by_method(handlers: dict[str, Handler]) -> Handler:
    async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
        await handlers[request.method](request, send, params)

    return handle


def _api_version(request: Request, *, required: bool) -> str | None:
    version = next((v for k, v in request.query if k == "api-version"), None)
    if required and not version:
        raise InvalidRequest(
            "The api-version query parameter is required on Azure's /openai/responses routes; "
            "use /openai/v1/responses without one.",
            param="api-version",
            code="missing_required_parameter",
        )
    return version
