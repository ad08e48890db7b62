"""The data-plane endpoint: route, authenticate, read, inject faults, call the operation, send the reply.

    dispatcher = OpenAIDispatcher(settings, table, faults, stats)   # an ASGI app for any /.../openai/... path

Paths, after any prefix an API Management front adds (`/apim/foo/openai/...` routes like `/openai/...`):
    /openai/deployments/{deployment}/{operation}?api-version=...   api-version required (else Azure's 404)
    /openai/v1/{operation}                                        deployment = body `model` (form field
                                                                  `model` for audio uploads)
Order of checks: path and api-version (404), key (401), body (400), deployment (404 DeploymentNotFound),
then the request counts against the deployment, its fault is drawn, `latency_ms` passes, and the
operation answers (400s for bad fields and filtered prompts, 200 otherwise).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import orjson
from starlette.datastructures import Headers, QueryParams, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from .call import Call, FormPayload, Operation, Reply, Upload
from .deployments import DeploymentTable
from .errors import (
    AccessDenied,
    EmulatorError,
    InvalidRequest,
    OperationTimedOut,
    ResourceNotFound,
    ServerFault,
    ServiceUnavailable,
    Throttled,
)
from .faults import FAULT_HEADER, FaultBook, parse_fault_header
from .operations import OPERATIONS
from .responses import ResponseTable
from .settings import DeploymentSettings, EmulatorSettings, FaultSpec
from .stats import RequestStats
from .wire import Header, send_reply, send_whole, sleep_unless_disconnected

__all__ = ["OpenAIDispatcher", "check_key"]

_ROUTE = re.compile(r"^.*?/openai/(?:deployments/(?P<deployment>[^/]+)/(?P<operation>.+?)|v1/(?P<v1>.+?))/?$")
# The Responses API: create on /openai/v1/responses or the dated /openai/responses?api-version=, and one stored
# response by id. The deployment is named in the body's `model`.
_RESPONSES = re.compile(r"^.*?/openai/(?P<v1>v1/)?responses(?:/(?P<id>[^/]+)(?P<sub>/input_items|/cancel)?)?/?$")
_RESPONSE_OPERATION = Operation("Responses_Create", lambda call: Reply.json({}))
_UPLOAD_HEAD = 64
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_STATIC_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains; preload"),
)


class OpenAIDispatcher:
    """ASGI app serving every Azure OpenAI data-plane operation in `OPERATIONS`."""

    def __init__(
        self, settings: EmulatorSettings, table: DeploymentTable, faults: FaultBook, stats: RequestStats
    ) -> None:
        self._keys = frozenset(settings.api_keys)
        self._region = settings.region.encode()
        self._table, self._faults, self._stats = table, faults, stats
        self._responses = ResponseTable()  # this instance's stored responses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        headers = Headers(scope=scope)
        deployment: DeploymentSettings | None = None
        try:
            stored = _RESPONSES.match(scope["path"])
            if stored is not None and (stored["id"] is not None or scope["method"] != "POST"):
                self._authenticate(headers)
                body = _stored_response(self._responses, scope, stored)
                await send_whole(send, 200, [*self._headers(request_id, headers, None), _JSON], orjson.dumps(body))
                return
            if stored is not None:
                operation_name, operation, name = "responses", _RESPONSE_OPERATION, None
                api_version = _responses_api_version(scope, dated=stored["v1"] is None)
            else:
                operation_name, operation, name, api_version = _route(scope)
            self._authenticate(headers)
            body, form = await _read(Request(scope, receive), operation)
            deployment = self._table.resolve(name if name is not None else _model_field(body, form))
            self._stats.record_request(deployment.name, operation_name)
            fault = self._faults.pick(deployment.name, parse_fault_header(headers.get(FAULT_HEADER)))
            if fault is not None and fault.kind == "timeout":
                await self._time_out(fault, deployment, receive)
            elif fault is not None and fault.kind != "reset":
                _raise_fault(fault, operation, api_version or "v1", request_id)
            if deployment.latency_ms:
                await asyncio.sleep(deployment.latency_ms / 1000)
            call = Call(
                deployment=deployment,
                operation=operation_name,
                request_id=request_id,
                headers=headers,
                base_url=_base_url(scope, headers),
                json=body,
                form=form,
                next_response=lambda: self._table.next_response(deployment),
                next_turn=lambda: self._table.next_turn(deployment),
            )
            reply = self._responses.create(call) if operation is _RESPONSE_OPERATION else operation.handle(call)
            reset_after = fault.after_chunks if fault is not None and fault.kind == "reset" else None
            self._stats.record_outcome(
                deployment.name, status="reset" if reset_after is not None else 200, tokens=reply.tokens
            )
            interval = deployment.chunk_interval_ms / 1000
            response_headers = self._headers(request_id, headers, deployment)
            await send_reply(send, reply, response_headers, interval_s=interval, reset_after=reset_after)
        except EmulatorError as error:
            if deployment is not None:
                self._stats.record_outcome(deployment.name, status=error.status)
            response_headers = [
                *self._headers(request_id, headers, deployment),
                *error.headers,
                (b"content-type", b"application/json"),
            ]
            await send_whole(send, error.status, response_headers, orjson.dumps(error.body()))
        except (_ClientGone, ClientDisconnect):
            pass  # the client hung up (mid-upload, or during a `timeout` fault): no one is left to answer

    def _authenticate(self, headers: Headers) -> None:
        check_key(self._keys, headers)

    async def _time_out(self, fault: FaultSpec, deployment: DeploymentSettings, receive: Receive) -> None:
        if await sleep_unless_disconnected(receive, fault.sleep_s):
            self._stats.record_outcome(deployment.name, status="timeout")
            raise _ClientGone()
        raise OperationTimedOut()

    def _headers(self, request_id: str, headers: Headers, deployment: DeploymentSettings | None) -> list[Header]:
        """The headers Azure puts on every answer; rate-limit ones once a deployment is known."""
        rid = request_id.encode()
        client_id = headers.get("x-ms-client-request-id")
        out = [
            (b"apim-request-id", rid),
            (b"x-request-id", str(uuid.uuid4()).encode()),
            (b"x-ms-client-request-id", client_id.encode() if client_id else rid),
            (b"x-ms-region", self._region),
            *_STATIC_HEADERS,
        ]
        if deployment is not None:
            left_requests, left_tokens = self._stats.remaining(
                deployment.name,
                requests_limit=deployment.requests_per_minute,
                tokens_limit=deployment.tokens_per_minute,
            )
            name = deployment.name.encode()
            out += [
                (b"x-ms-deployment-name", name),
                (b"azureml-model-session", name + b"-emulator"),
                (b"x-ms-rai-invoked", b"true"),
                (b"x-ratelimit-limit-requests", str(deployment.requests_per_minute).encode()),
                (b"x-ratelimit-limit-tokens", str(deployment.tokens_per_minute).encode()),
                (b"x-ratelimit-remaining-requests", str(left_requests).encode()),
                (b"x-ratelimit-remaining-tokens", str(left_tokens).encode()),
            ]
        return out


def check_key(keys: frozenset[str], headers: Headers) -> None:
    """`api-key`, else a bearer token, must be one of `keys` (any non-empty one when `keys` is empty)."""
    key = headers.get("api-key")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        # Entra ID tokens come as bearer tokens; the emulator checks them against the same list.
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key or (keys and key not in keys):
        raise AccessDenied()


class _ClientGone(Exception):
    """The client disconnected while a `timeout` fault held its request."""


def _route(scope: Scope) -> tuple[str, Operation, str | None, str | None]:
    """Operation path, operation, deployment from the path (None on v1) and api-version of a request."""
    match = _ROUTE.match(scope["path"])
    operation_name = (match["operation"] or match["v1"]) if match else ""
    operation = OPERATIONS.get(operation_name)
    if match is None or operation is None or scope["method"] != "POST":
        raise ResourceNotFound()
    api_version = QueryParams(scope["query_string"]).get("api-version")
    if match["deployment"] is not None and not api_version:
        raise ResourceNotFound()  # what Azure answers, not a 400
    return operation_name, operation, match["deployment"], api_version


_JSON: Header = (b"content-type", b"application/json")


def _responses_api_version(scope: Scope, *, dated: bool) -> str | None:
    api_version = QueryParams(scope["query_string"]).get("api-version")
    if dated and not api_version:
        raise ResourceNotFound()
    if api_version and not (api_version in ("preview", "latest") or api_version >= "2025-03-01-preview"):
        # What Azure answers a version from before the Responses API.
        raise InvalidRequest(f"API version not supported: {api_version}.", code="BadRequest")
    return api_version


def _stored_response(table: ResponseTable, scope: Scope, match: re.Match[str]) -> dict[str, Any]:
    """Retrieve, delete, list input items or cancel one stored response (404 for an id this instance lacks)."""
    _responses_api_version(scope, dated=match["v1"] is None)
    method, response_id, sub = scope["method"], match["id"], match["sub"]
    if response_id is None:
        raise ResourceNotFound()
    if sub is None and method == "GET":
        return table.retrieve(response_id)
    if sub is None and method == "DELETE":
        return table.delete(response_id)
    if sub == "/cancel" and method == "POST":
        return table.cancel(response_id)
    if sub == "/input_items" and method == "GET":
        query = QueryParams(scope["query_string"])
        limit = query.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise InvalidRequest("Invalid 'limit': expected an integer from 1 to 100.", param="limit")
        return table.input_items(response_id, query.get("order"), int(limit))
    raise ResourceNotFound()


def _model_field(body: dict[str, Any], form: FormPayload | None) -> str:
    """The v1 surface names the deployment in the body's `model` (a form field for uploads)."""
    name = form.get("model") if form is not None else body.get("model")
    session = body.get("session")
    if name is None and isinstance(session, dict):  # realtime client secrets name it in the session
        name = session.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    return name


def _raise_fault(fault: FaultSpec, operation: Operation, api_version: str, request_id: str) -> None:
    if fault.kind == "429":
        raise Throttled(operation.azure_name, api_version, fault.retry_after_ms)
    if fault.kind == "500":
        raise ServerFault(request_id)
    raise ServiceUnavailable()


async def _read(request: Request, operation: Operation) -> tuple[dict[str, Any], FormPayload | None]:
    """The JSON body, or the multipart form with its upload reduced to name, size and first bytes."""
    if not operation.multipart:
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(_BAD_JSON) from exc
        if not isinstance(body, dict):
            raise InvalidRequest(_BAD_JSON)
        return body, None
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Invalid content type: expected multipart/form-data.", param="file")
    fields: dict[str, list[str]] = {}
    upload: Upload | None = None
    try:
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key == "file" and upload is None:
                        head = await value.read(_UPLOAD_HEAD)
                        size = value.size if value.size is not None else len(head)
                        upload = Upload(value.filename or "", size, head)
                else:
                    fields.setdefault(key, []).append(value)
    except (MultiPartException, HTTPException) as exc:
        # Starlette raises HTTPException for a malformed form when mounted in an app, the parser's own
        # exception otherwise; both mean the client sent a broken body.
        raise InvalidRequest(f"Could not parse the multipart form: {exc}", param="file") from exc
    return {}, FormPayload(fields, upload)


def _base_url(scope: Scope, headers: Headers) -> str:
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"
