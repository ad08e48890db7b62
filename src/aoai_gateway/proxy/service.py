"""Forwarding one call to its deployment and relaying the answer: the gateway's core service.

    service = ProxyService(table, upstream_client)
    await service.forward(request, send, call)

Non-streamed answers are read whole and sent in one piece; streamed ones (Server-Sent Events, audio, or any
body without a length) are relayed chunk by chunk as they arrive. A client that disconnects cancels the upstream
request at once. Once the first byte went out, an upstream failure can only end the stream: an SSE stream gets a
final `data: {"error": ...}` event (the OpenAI SDKs raise it), any other body is cut short.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import AuthenticationError, GatewayError, UpstreamError
from ..http.asgi import RawHeaders, Send
from ..http.request import Request
from ..providers import PROVIDERS
from ..upstream import UpstreamClient, UpstreamRequest, UpstreamResponse
from .body import Call
from .deployments import DeploymentTable
from .headers import client_key, request_headers, response_headers

log = logging.getLogger("aoai_gateway.proxy")

# Bodies up to this size with a Content-Length are read whole: one write back to the client is cheaper.
_WHOLE_BODY_MAX = 1024 * 1024


class ProxyService:
    """`client` is attached when the app starts (an upstream session needs the running event loop)."""

    def __init__(self, table: DeploymentTable, *, log_bodies: bool = False) -> None:
        self.table = table
        self.client: UpstreamClient | None = None
        self.log_bodies = log_bodies

    async def forward(self, request: Request, send: Send, call: Call) -> None:
        deployment = self.table.resolve(call.model)
        request.state["model"] = call.model
        request.state["deployment"] = deployment.deployment
        provider = PROVIDERS[deployment.provider]
        key = deployment.key or client_key(request.headers)
        if key is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'api-key: KEY', "
                "or configure api_key for this deployment on the gateway."
            )
        query = [(k, v) for k, v in (call.query if call.query is not None else request.query) if k != "api-version"]
        upstream = UpstreamRequest(
            "POST",
            provider.url(deployment, call.operation, query, call.client_api_version),
            [*request_headers(request.scope["headers"]), *provider.auth_headers(key)],
            call.body_with_model(provider.body_model(deployment)),
        )
        if self.log_bodies:
            _log_body("request body", upstream.body)
        await _cancel_on_disconnect(request, self._exchange(request, send, upstream, call.stream))

    async def _exchange(self, request: Request, send: Send, upstream: UpstreamRequest, stream: bool) -> None:
        if self.client is None:
            raise GatewayError("The gateway is not started yet; try again in a moment.")
        started = time.perf_counter()
        response = await self.client.send(upstream, stream=stream)
        request.state["upstream_ms"] = round((time.perf_counter() - started) * 1000, 3)
        try:
            headers = response_headers(response.raw_headers)
            for name, value in headers:
                if name in (b"apim-request-id", b"x-request-id"):
                    request.state["upstream_request_id"] = value.decode("latin-1")
            length = _content_length(response.raw_headers)
            if stream or length is None or length > _WHOLE_BODY_MAX or _is_event_stream(headers):
                await _relay(request, send, response, headers)
            else:
                body = await response.read()
                if self.log_bodies:
                    _log_body("response body", body)
                headers.append((b"content-length", str(len(body)).encode()))
                request.state["finished"] = True
                await send({"type": "http.response.start", "status": response.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
        finally:
            await response.release()


async def _relay(request: Request, send: Send, response: UpstreamResponse, headers: RawHeaders) -> None:
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    event_stream = _is_event_stream(headers)
    try:
        async for chunk in response.iter_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except UpstreamError as exc:
        request.state["stream_error"] = exc.code
        log.warning("upstream stream ended early: %s", exc.message)
        if event_stream:
            # The status is already sent; the OpenAI SDKs raise an APIError for an `error` event.
            request.state["finished"] = True
            await send({"type": "http.response.body", "body": b"data: " + exc.body() + b"\n\n"})
            return
        raise AbortResponse from exc
    request.state["finished"] = True
    await send({"type": "http.response.body", "body": b""})


class AbortResponse(Exception):
    """Close the client connection without finishing the body, so the client sees it is incomplete."""


async def _cancel_on_disconnect(request: Request, work: object) -> None:
    """Run `work` (a coroutine) in this task; cancel it if the client disconnects before it finished."""
    task = asyncio.current_task()
    assert task is not None
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                # After the last byte went out, the server reports "disconnect" too: that is not a cancel.
                if not request.state.get("finished"):
                    disconnected = True
                    task.cancel()
                return

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await work  # type: ignore[misc]
    except asyncio.CancelledError:
        if not disconnected:
            raise
        task.uncancel()
        request.state["client_disconnected"] = True
    finally:
        watcher.cancel()


def _log_body(what: str, body: bytes) -> None:
    # Only with `logging.log_bodies: true`, a debugging aid; keys travel in headers and are never logged.
    log.debug("%s: %s", what, body[:4096].decode("utf-8", "replace"))


def _content_length(raw: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in raw:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _is_event_stream(headers: RawHeaders) -> bool:
    return any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers)
