"""Files and batches on the emulator, on Azure's v1 and dated surfaces; every other path goes to the data plane.

    /openai/v1/files, /openai/files?api-version=...         POST (multipart: file, purpose), GET (list)
    /openai/v1/files/{id}, .../files/{id}/content           GET, DELETE (the file); GET (its bytes)
    /openai/v1/batches, /openai/batches?api-version=...     POST (create), GET (list)
    /openai/v1/batches/{id}, .../batches/{id}/cancel        GET; POST

State (files, batches) belongs to this app instance. Keys are checked like the data plane's.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.datastructures import Headers, QueryParams, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .batches import BatchBook
from .call import Call
from .deployments import DeploymentTable
from .dispatch import check_key
from .errors import EmulatorError, InvalidRequest, ResourceNotFound
from .files import PURPOSES, FileStore
from .operations import OPERATIONS
from .settings import EmulatorSettings
from .stats import RequestStats
from .wire import send_whole

__all__ = ["ResourceAPI"]

_ROUTE = re.compile(
    r"^.*?/openai/(?P<v1>v1/)?(?P<kind>files|batches)(?:/(?P<id>[^/]+))?(?:/(?P<action>content|cancel))?/?$"
)
_JSON = (b"content-type", b"application/json")


class ResourceAPI:
    """ASGI app: files and batches here, anything else to `data_plane`."""

    def __init__(
        self, settings: EmulatorSettings, table: DeploymentTable, stats: RequestStats, data_plane: ASGIApp
    ) -> None:
        self._keys = frozenset(settings.api_keys)
        self._table, self._stats, self._data_plane = table, stats, data_plane
        self.files = FileStore(settings.max_file_bytes)
        self.batches = BatchBook(self.files, self._run_line)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _ROUTE.match(scope["path"])
        if match is None:
            await self._data_plane(scope, receive, send)
            return
        request_id = str(uuid.uuid4()).encode()
        headers = [(b"apim-request-id", request_id), (b"x-request-id", request_id)]
        try:
            query = QueryParams(scope["query_string"])
            if match["v1"] is None and not query.get("api-version"):
                raise ResourceNotFound()
            check_key(self._keys, Headers(scope=scope))
            request = Request(scope, receive)
            status, body, media_type = await self._handle(request, match, query)
            await send_whole(send, status, [*headers, (b"content-type", media_type)], body)
        except EmulatorError as error:
            await send_whole(send, error.status, [*headers, *error.headers, _JSON], orjson.dumps(error.body()))
        except ClientDisconnect:
            pass

    async def _handle(self, request: Request, match: re.Match[str], query: QueryParams) -> tuple[int, bytes, bytes]:
        kind, object_id, action, method = match["kind"], match["id"], match["action"], request.method
        limit = _limit(query.get("limit"), 10000 if kind == "files" else 20)
        result: dict[str, Any]
        if kind == "files":
            if object_id is None and action is None and method == "POST":
                result = (await self._upload(request)).public()
            elif object_id is None and action is None and method == "GET":
                result = self.files.list(query.get("purpose"), limit, query.get("after"), query.get("order", "desc"))
            elif object_id is not None and action is None and method == "GET":
                result = self.files.get(object_id).public()
            elif object_id is not None and action is None and method == "DELETE":
                result = self.files.delete(object_id)
            elif object_id is not None and action == "content" and method == "GET":
                return 200, self.files.get(object_id).content, b"application/octet-stream"
            else:
                raise ResourceNotFound()
        elif object_id is None and action is None and method == "POST":
            result = self.batches.create(await _json(request))
        elif object_id is None and action is None and method == "GET":
            result = self.batches.list(limit, query.get("after"))
        elif object_id is not None and action is None and method == "GET":
            result = self.batches.get(object_id)
        elif object_id is not None and action == "cancel" and method == "POST":
            result = self.batches.cancel(object_id)
        else:
            raise ResourceNotFound()
        return 200, orjson.dumps(result), b"application/json"

    async def _upload(self, request: Request) -> Any:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InvalidRequest("Invalid content type: expected multipart/form-data.", param="file")
        try:
            async with request.form() as form:
                purpose = form.get("purpose")
                upload = form.get("file")
                if not isinstance(purpose, str) or purpose not in PURPOSES:
                    raise InvalidRequest(f"Invalid 'purpose': expected one of {', '.join(PURPOSES)}.", param="purpose")
                if not isinstance(upload, UploadFile):
                    raise InvalidRequest("Missing required parameter: 'file'.", param="file")
                content = await upload.read()
                filename = upload.filename or "file"
        except (MultiPartException, HTTPException) as exc:
            raise InvalidRequest(f"Could not parse the multipart form: {exc}", param="file") from exc
        if purpose == "batch":
            _check_batch_file(content)
        return self.files.add(filename, purpose, content)

    def _run_line(self, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One batch line answered by the emulator's own operation, on the deployment its `model` names."""
        name = url.removeprefix("/v1").lstrip("/")
        operation = OPERATIONS.get(name)
        try:
            if operation is None or operation.multipart:
                raise ResourceNotFound()
            deployment = self._table.resolve(str(body.get("model", "")))
            self._stats.record_request(deployment.name, name)
            call = Call(
                deployment=deployment,
                operation=name,
                request_id=str(uuid.uuid4()),
                headers=Headers(),
                base_url="http://emulator",
                json=body,
                next_response=lambda: self._table.next_response(deployment),
                next_turn=lambda: self._table.next_turn(deployment),
            )
            reply = operation.handle(call)
            self._stats.record_outcome(deployment.name, status=200, tokens=reply.tokens)
            return 200, orjson.loads(b"".join(reply.chunks))
        except EmulatorError as error:
            return error.status, error.body()


def _check_batch_file(content: bytes) -> None:
    """Azure validates a batch file at upload: one JSON object per line, each with a custom_id and a body."""
    for number, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict) or "custom_id" not in line:
            raise InvalidRequest(
                f"Line {number} of the batch file is not a request object with custom_id and body.",
                param="file",
                code="invalid_batch_file",
            )


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("We could not parse the JSON body of your request.") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request.")
    return body


def _limit(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 10000:
        raise InvalidRequest("Invalid 'limit': expected an integer from 1 to 10000.", param="limit")
    return int(value)
