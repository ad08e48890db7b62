"""Files and batches: forwarded to the one upstream resource that holds them, batch input rewritten on the way.

    files = FilesService(settings, service, owners)        # owners: keys mode with files.key_access: own
    await files.forward(request, send, operation, ids)      # operation from operations.RESOURCE_OPERATIONS

Every call goes to the endpoint of `files.deployment` (default: the first azure deployment), so a file or batch id
never needs routing back to where it was made. An upload with `purpose=batch` is checked and rewritten line by line
(batch_input.py) into a temporary file before any byte goes upstream: OpenAI model names become the deployments
on that resource, and a line the key may not run is refused with its number.

In `auth: keys`, `files.key_access: none` refuses every call (403); `own` records the ids a key creates and
answers 404 for any other id, lists only the key's own objects, and refuses batches to keys with token windows
(tpm, daily or budget tokens), which batch usage would bypass.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import tempfile
from typing import IO

import orjson

from ..access.base import Access
from ..api_call import parse_json
from ..batch_input import BATCH_URLS, OPENAI_BATCH_URLS, BatchLineRules, rewrite_batch_lines
from ..config import Deployment, Settings
from ..errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    UnsupportedMediaType,
    UpstreamCredentialsRefused,
)
from ..http.asgi import Send
from ..http.multipart import MultipartForm, Part
from ..http.request import Request
from ..http.spool import RECEIVE_BUFFER, Body, read_spooled
from ..operations import BodyKind, ResourceOperation
from ..providers import PROVIDERS
from ..store.keys import GatewayKey
from ..store.owners import ObjectOwners
from ..upstream import UpstreamRequest, UpstreamResponse
from .headers import response_headers
from .service import ProxyService

_QUERY = frozenset({"limit", "after", "order", "purpose"})  # list parameters; nothing else goes upstream
_KINDS = {"files": "file", "batches": "batch"}
_COPY = 1024 * 1024


class FilesService:
    def __init__(self, settings: Settings, service: ProxyService, owners: ObjectOwners | None) -> None:
        self.settings = settings.files
        self.policy = settings.access.max_tokens_policy
        self.max_json_bytes = settings.limits.max_json_bytes
        self.keys_mode = settings.auth == "keys"
        self.service = service
        self.access: Access = service.access
        self.owners = owners if self.keys_mode and self.settings.key_access == "own" else None
        self.deployment = settings.files_deployment()
        # Its health entry: the key for its upstream credentials (a key it holds, or Entra ID tokens).
        self.health = next((h for h in service.router.deployments() if h.deployment is self.deployment), None)
        # Names a batch line may use -> (model, deployment on the files resource): its own deployments only.
        self.targets: dict[str, tuple[str, str]] = {}
        self.configured = frozenset(n for d in settings.deployments for n in (d.model, d.deployment))
        if self.deployment is not None:
            home = (self.deployment.provider, self.deployment.endpoint)
            for d in settings.deployments:
                if (d.provider, d.endpoint) == home:
                    self.targets.setdefault(d.model, (d.model, d.deployment))
                    self.targets.setdefault(d.deployment, (d.model, d.deployment))

    async def forward(
        self,
        request: Request,
        send: Send,
        operation: ResourceOperation,
        ids: dict[str, str],
        client_api_version: str | None = None,
    ) -> None:
        """Authenticate, check ownership, read and rewrite the body, send it, relay the answer."""
        await self.access.authenticate(request)
        key = request.exchange.key
        if self.keys_mode and self.owners is None:
            raise PermissionDenied(
                "Files and batches are not open to gateway keys here (files.key_access: none).",
                code="files_not_allowed",
            )
        deployment = self.deployment
        if deployment is None:
            raise NotFound("Files and batches need an azure deployment (or files.deployment) on this gateway.")
        request.exchange.deployment = deployment.deployment
        kind = _KINDS[operation.template.split("/", 1)[0]]
        if key is not None and self.owners is not None:
            for value in ids.values():
                if not await self.owners.owned_by(value, key.id):
                    raise NotFound(f"No such {kind.capitalize()} object: {value}", param=f"{kind}_id")
        body: Body = b""
        if operation.body is BodyKind.FORM:
            body = await self._upload(request, key)
        elif operation.body is BodyKind.JSON:
            body = await self._batch(request, key)
        upstream = await self._upstream(request, deployment, operation, ids, body, client_api_version)
        client = self.service.clients[deployment.provider]
        streamed = operation.template.endswith("/content")
        response = await client.send(upstream, stream=streamed)
        if response.status in (401, 403) and deployment.holds_credential:
            await response.release()
            raise UpstreamCredentialsRefused(deployment.deployment)
        owners = self.owners
        if owners is None or key is None or streamed or (operation.method == "GET" and ids):
            await self.service.relay(request, send, response, stream=streamed)
            return
        await self._owned_answer(request, send, response, operation, ids, kind, key, owners)

    async def _upstream(
        self,
        request: Request,
        deployment: Deployment,
        operation: ResourceOperation,
        ids: dict[str, str],
        body: Body,
        client_api_version: str | None,
    ) -> UpstreamRequest:
        provider = PROVIDERS[deployment.provider]
        assert self.health is not None  # set whenever a files deployment is
        credentials = await self.service.upstream_credentials(self.health, self.access.upstream_key(request))
        query = [(k, v) for k, v in request.query if k in _QUERY] if operation.method == "GET" else []
        url = provider.resource_url(deployment, operation.path(ids), query, client_api_version)
        headers = self.service.headers.upstream(request.scope["headers"])
        if operation.body is BodyKind.NONE:
            headers = [(k, v) for k, v in headers if k != "content-type"]
        headers += credentials
        return UpstreamRequest(operation.method, url, headers, body, deployment=deployment.deployment)

    async def _upload(self, request: Request, key: GatewayKey | None) -> Body:
        if request.content_type != "multipart/form-data":
            raise UnsupportedMediaType(request.content_type, "multipart/form-data with `file` and `purpose` fields")
        # Past a small buffer the upload is spooled to an unlinked file: a 200 MB batch file is never in memory.
        body = await read_spooled(request, self.settings.max_upload_bytes, in_memory=RECEIVE_BUFFER)
        request.exchange.bytes_in = len(body)
        form = MultipartForm.parse(body, request.headers["content-type"])
        purpose = form.value("purpose")
        part = next((p for p in form.parts if p.name == "file"), None)
        if purpose is None or part is None:
            raise InvalidRequest(
                "An upload needs a `file` and a `purpose` field.", param="file", code="missing_required_parameter"
            )
        if purpose.strip() != b"batch":
            return body
        rules = BatchLineRules(
            targets=self.targets,
            configured=self.configured,
            models=key.models if key is not None else None,
            max_tokens=key.limits.max_tokens if key is not None else None,
            policy=self.policy,
            max_line_bytes=self.settings.max_line_bytes,
        )
        # The rewrite reads and writes up to the whole upload: off the event loop.
        return await asyncio.to_thread(_rewritten_upload, body, part, rules)

    async def _batch(self, request: Request, key: GatewayKey | None) -> bytes:
        if request.content_type not in ("application/json", ""):
            raise UnsupportedMediaType(request.content_type, "application/json")
        body = await request.body(self.max_json_bytes)
        request.exchange.bytes_in = len(body)
        document = parse_json(body)
        endpoint = document.get("endpoint")
        if endpoint not in BATCH_URLS:
            raise InvalidRequest(
                f"`endpoint` must be one of {', '.join(OPENAI_BATCH_URLS)}.", param="endpoint", code="invalid_value"
            )
        file_id = document.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest(
                "`input_file_id` is required.", param="input_file_id", code="missing_required_parameter"
            )
        if key is not None and self.owners is not None:
            limits = key.limits
            if limits.tpm is not None or limits.daily_tokens is not None or limits.budget_tokens is not None:
                raise PermissionDenied(
                    f"The key {key.id} has token limits, which batch usage would bypass: batches are not open to it.",
                    code="batch_not_allowed",
                )
            if not await self.owners.owned_by(file_id, key.id):
                raise NotFound(f"No such File object: {file_id}", param="input_file_id")
        return body

    async def _owned_answer(
        self,
        request: Request,
        send: Send,
        response: UpstreamResponse,
        operation: ResourceOperation,
        ids: dict[str, str],
        kind: str,
        key: GatewayKey,
        owners: ObjectOwners,
    ) -> None:
        """Creates record their id for the key, deletes forget it, lists show only the key's own objects."""
        try:
            body = await response.read()
        finally:
            await response.release()
        if 200 <= response.status < 300:
            document = orjson.loads(body) if body else {}
            if operation.method == "GET":  # a list
                own = await owners.ids(key.id, kind)
                items = document.get("data") if isinstance(document, dict) else None
                if isinstance(items, list):
                    document["data"] = [item for item in items if isinstance(item, dict) and item.get("id") in own]
                    body = orjson.dumps(document)
            elif operation.method == "DELETE":
                await owners.forget(ids[f"{kind}_id"])
            elif not ids and isinstance(document, dict) and isinstance(document.get("id"), str):
                await owners.record(document["id"], key.id, kind)
        headers = response_headers(response.raw_headers)
        headers.append((b"content-length", str(len(body)).encode()))
        request.exchange.finished = True
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _rewritten_upload(body: Body, part: Part, rules: BatchLineRules) -> Body:
    """The form with its `file` part rewritten, in a new unlinked temporary file, mapped back like a spooled body."""
    with contextlib.ExitStack() as closing:
        out: IO[bytes] = closing.enter_context(tempfile.TemporaryFile())
        _copy(body, 0, part.start, out)
        for line in rewrite_batch_lines(body, part.start, part.end, rules):
            out.write(line)
        _copy(body, part.end, len(body), out)
        out.flush()
        if out.tell() == 0:
            return b""
        return mmap.mmap(out.fileno(), 0, access=mmap.ACCESS_READ)


def _copy(body: Body, start: int, end: int, out: IO[bytes]) -> None:
    for position in range(start, end, _COPY):
        out.write(body[position : min(end, position + _COPY)])


__all__ = ["FilesService"]
