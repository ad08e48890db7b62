"""Files and batches on all three surfaces, to the upstream resource that holds them (proxy/files.py).

POST /v1/files (multipart), GET /v1/files, GET|DELETE /v1/files/{file_id}, GET /v1/files/{file_id}/content
POST /v1/batches, GET /v1/batches, GET /v1/batches/{batch_id}, POST /v1/batches/{batch_id}/cancel
The same under /openai/v1/ (Azure's v1 surface) and /openai/ with ?api-version= (Azure's dated surface).

Ids must match `operations.ID_PATTERNS` (404 otherwise, nothing sent upstream).
"""

from __future__ import annotations

from ..errors import InvalidRequest
from ..http.asgi import Send
from ..http.paths import Handler, Router
from ..http.request import Request
from ..operations import RESOURCE_OPERATIONS, resource_operation
from ..proxy.files import FilesService

_SURFACES = ("api_base", "/openai/v1", "/openai")


def add_files_routes(router: Router, api_base: str, files: FilesService) -> None:
    """Added before the model-scoped routes: `/openai/v1/files/{file_id}` must not reach `/openai/v1/{operation}`."""

    def handler(prefix: str, dated: bool) -> Handler:
        async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
            operation, ids = resource_operation(request.method, request.path[len(prefix) + 1 :])
            api_version = next((v for k, v in request.query if k == "api-version"), None)
            if dated and not api_version:
                raise InvalidRequest(
                    "The api-version query parameter is required on Azure's /openai/ routes.",
                    param="api-version",
                    code="missing_required_parameter",
                )
            # Only the dated surface's version is a dated one; a v1 client's `preview` must not reach a dated route.
            await files.forward(request, send, operation, ids, api_version if dated else None)

        return handle

    for surface in _SURFACES:
        prefix = api_base if surface == "api_base" else surface
        handle = handler(prefix, dated=surface == "/openai")
        templates: dict[str, set[str]] = {}
        for operation in RESOURCE_OPERATIONS:
            templates.setdefault(operation.template, set()).add(operation.method)
        for template, methods in templates.items():
            router.add(f"{prefix}/{template}", methods, handle)
