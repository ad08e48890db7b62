"""Forwarding one call to a deployment of its model, failing over, and relaying the answer.

    service = ProxyService(router, metrics)
    await service.forward(request, send, call)

Attempts: the router picks a deployment; a connect error, timeout, or a 408/429/500/502/503/504 answer moves on
to the next deployment, up to `routing.max_attempts` and `routing.deadline_seconds`. A 429 (or a 503 naming a
wait) cools that deployment down for as long as its retry-after headers say. The last attempt's answer is relayed
as it is; if no deployment could even be tried, the client gets a 429 naming the soonest one's wait.

Relaying: non-streamed answers are read whole and sent in one piece; streamed ones (Server-Sent Events, audio,
any body without a length) are relayed chunk by chunk as they arrive, so a stream is only ever retried before
its first byte reached the client. A client that disconnects cancels the upstream request at once. Once the
first byte went out, an upstream failure can only end the stream: an SSE stream gets a final
`data: {"error": ...}` event (the OpenAI SDKs raise it), any other body is cut short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import (
    AuthenticationError,
    GatewayError,
    NoDeploymentAvailable,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from ..http.asgi import RawHeaders, Send
from ..http.request import Request
from ..http.spool import Body
from ..metrics import GatewayMetrics
from ..providers import PROVIDERS
from ..routing import DeploymentHealth, DeploymentRouter, retry_after_seconds, retryable_status
from ..upstream import UpstreamClient, UpstreamRequest, UpstreamResponse
from .body import Call
from .headers import client_key, request_headers, response_headers
from .usage import StreamTail, Usage, UsageChunkFilter, usage_of_body

if TYPE_CHECKING:
    from ..access import AccessControl

log = logging.getLogger("aoai_gateway.proxy")

# Bodies up to this size with a Content-Length are read whole: one write back to the client is cheaper.
_WHOLE_BODY_MAX = 1024 * 1024


class AbortResponse(Exception):
    """Close the client connection without finishing the body, so the client sees it is incomplete."""


class ProxyService:
    """`client` is attached when the app starts (an upstream session needs the running event loop)."""

    def __init__(
        self,
        router: DeploymentRouter,
        metrics: GatewayMetrics | None = None,
        *,
        log_bodies: bool = False,
        upload_limits: dict[str, int] | None = None,
    ) -> None:
        self.router = router
        self.metrics = metrics
        self.client: UpstreamClient | None = None
        # In-process clients by provider name (`local`); every other provider goes through `client`.
        self.clients: dict[str, UpstreamClient] = {}
        # Largest multipart upload each provider takes (Azure's 25 MiB; local models more), once the model is known.
        self.upload_limits = upload_limits or {}
        self.max_upload_bytes = max(self.upload_limits.values(), default=None)
        self.access: AccessControl | None = None  # set at start-up in `auth: keys` mode
        self.log_bodies = log_bodies
        self.streams_in_flight = 0

    async def forward(self, request: Request, send: Send, call: Call) -> None:
        group = self.router.group(call.model)
        request.state["model"] = call.model
        if self.log_bodies:
            _log_body("request body", call.body)
        if self.access is None:
            await _cancel_on_disconnect(request, self._attempts(request, send, call, group))
            return
        grant = await self.access.admit(request, call)
        request.state["strip_usage"] = grant.strip_usage
        try:
            await _cancel_on_disconnect(request, self._attempts(request, send, call, group))
        finally:
            usage = request.state.get("usage")
            await self.access.settle(grant, usage if isinstance(usage, tuple) else None)

    async def _attempts(self, request: Request, send: Send, call: Call, group: list[DeploymentHealth]) -> None:
        settings = self.router.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.deadline_seconds
        # In `auth: keys` mode the caller's key is a gateway key: it never goes upstream.
        caller_key = client_key(request.headers) if self.access is None else None
        query = [(k, v) for k, v in (call.query if call.query is not None else request.query) if k != "api-version"]
        tried: set[DeploymentHealth] = set()
        failure: GatewayError | None = None
        for attempt in range(settings.max_attempts):
            health = self.router.next(group, tried)
            if health is None:
                break
            tried.add(health)
            deployment = health.deployment
            request.state["deployment"] = deployment.deployment
            request.state["attempts"] = attempt + 1
            provider = PROVIDERS[deployment.provider]
            key = deployment.key or caller_key
            if key is None and provider.requires_key:
                failure = AuthenticationError(
                    "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'api-key: KEY', "
                    "or configure api_key for this deployment on the gateway."
                )
                continue
            limit = self.upload_limits.get(deployment.provider)
            if call.form is not None and limit is not None and len(call.body) > limit:
                failure = PayloadTooLarge(limit)
                continue
            upstream = UpstreamRequest(
                "POST",
                provider.url(deployment, call.operation, query, call.client_api_version),
                [*request_headers(request.scope["headers"]), *(provider.auth_headers(key) if key else ())],
                call.body_with_model(provider.body_model(deployment)),
            )
            last = (
                len(group) == 1
                or attempt + 1 >= settings.max_attempts
                or loop.time() >= deadline
                or not self.router.has_next(group, tried)
            )
            # A 429 on the last try of a group says less than "every deployment is busy until T": answer that.
            final = last and len(group) == 1
            try:
                if await self._attempt(
                    request, send, health, upstream, call.stream, deadline, last, final, attempt > 0
                ):
                    return
                failure = None
            except UpstreamError as exc:
                if last:
                    raise
                failure = exc
        if failure is not None:
            raise failure
        raise NoDeploymentAvailable(call.model, self.router.retry_after(group))

    async def _attempt(
        self,
        request: Request,
        send: Send,
        health: DeploymentHealth,
        upstream: UpstreamRequest,
        stream: bool,
        deadline: float,
        last: bool,
        final: bool,
        retry: bool,
    ) -> bool:
        """One try on one deployment; True when the client got its answer, False to try the next deployment.

        `last`: no other deployment can be tried, so a retryable answer is relayed as it is, except a 429 when
        `final` is false (the caller then answers with the group's soonest retry time).
        """
        client = self.clients.get(health.deployment.provider, self.client)
        if client is None:
            raise GatewayError("The gateway is not started yet; try again in a moment.")
        clock = self.router.clock
        now = clock()
        health.in_flight += 1
        health.requests.add(now, 1)
        model, name = health.deployment.model, health.deployment.deployment
        started = time.perf_counter()
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await client.send(upstream, stream=stream)
            except TimeoutError:
                raise UpstreamTimeout("The upstream request timed out: the routing deadline passed.") from None
            except UpstreamError as exc:
                health.breaker.record(success=False, now=clock())
                self._count(health, exc.code or "upstream_error", None, retry)
                log.warning("deployment %s failed: %s", name, exc.message)
                raise
            seconds = time.perf_counter() - started
            request.state["upstream_ms"] = round(seconds * 1000, 3)
            health.observe_latency(seconds * 1000)
            status = response.status
            outcome = "ok" if status < 400 else f"http_{status}"
            if retryable_status(status):
                wait = retry_after_seconds(response.raw_headers)
                if status == 429 or wait is not None:
                    fallback = self.router.settings.default_cooldown_seconds
                    health.cool_down(fallback if wait is None else wait, clock())
                # Throttled is alive: a 429 does not count against the breaker.
                health.breaker.record(success=status == 429, now=clock())
                self._count(health, outcome, seconds, retry)
                if not last or (status == 429 and not final):
                    await response.release()
                    return False
                usage = await self._relay(request, send, response, stream)
            else:
                try:
                    usage = await self._relay(request, send, response, stream)
                except _FailedBeforeFirstByte as failed:
                    health.breaker.record(success=False, now=clock())
                    self._count(health, failed.error.code or "upstream_error", seconds, retry)
                    if last:
                        raise failed.error from None
                    return False
                health.breaker.record(success=True, now=clock())
                self._count(health, outcome, seconds, retry)
            if usage is not None:
                request.state["usage"] = usage
                health.tokens.add(clock(), usage[0] + usage[1])
                if self.metrics is not None:
                    self.metrics.usage(model, name, *usage)
            return True
        finally:
            health.in_flight -= 1

    def _count(self, health: DeploymentHealth, outcome: str, seconds: float | None, retry: bool) -> None:
        health.count(outcome)
        if self.metrics is not None:
            self.metrics.attempt(health.deployment.model, health.deployment.deployment, outcome, seconds, retry)

    async def _relay(self, request: Request, send: Send, response: UpstreamResponse, stream: bool) -> Usage | None:
        try:
            headers = response_headers(response.raw_headers)
            for name, value in headers:
                if name in (b"apim-request-id", b"x-request-id"):
                    request.state["upstream_request_id"] = value.decode("latin-1")
                elif name == b"x-gateway-audio-seconds":  # local speech models: the usage ledger's audio_seconds
                    request.state["audio_seconds"] = float(value)
            length = _content_length(response.raw_headers)
            if stream or length is None or length > _WHOLE_BODY_MAX or _is_event_stream(headers):
                return await self._relay_stream(request, send, response, headers)
            try:
                body = await response.read()
            except UpstreamError as exc:
                raise _FailedBeforeFirstByte(exc) from exc
            if self.log_bodies:
                _log_body("response body", body)
            headers.append((b"content-length", str(len(body)).encode()))
            request.state["finished"] = True
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return usage_of_body(body) if response.status == 200 else None
        finally:
            await response.release()

    async def _relay_stream(
        self, request: Request, send: Send, response: UpstreamResponse, headers: RawHeaders
    ) -> Usage | None:
        chunks = response.iter_chunks()
        # Nothing goes to the client before the upstream's first chunk: until then another deployment may serve.
        try:
            first = await anext(chunks, b"")
        except UpstreamError as exc:
            raise _FailedBeforeFirstByte(exc) from exc
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        event_stream = _is_event_stream(headers)
        tail = StreamTail()
        hidden = UsageChunkFilter() if event_stream and request.state.get("strip_usage") else None
        self.streams_in_flight += 1
        if self.metrics is not None:
            self.metrics.streams_in_flight.inc()
        try:
            chunk = first
            while chunk:
                if event_stream:
                    tail.feed(chunk)
                if hidden is not None:
                    chunk = hidden.feed(chunk)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await anext(chunks, b"")
            if hidden is not None and (rest := hidden.rest()):
                await send({"type": "http.response.body", "body": rest, "more_body": True})
        except UpstreamError as exc:
            request.state["stream_error"] = exc.code
            log.warning("upstream stream ended early: %s", exc.message)
            if not event_stream:
                raise AbortResponse from exc
            # The status is already sent; the OpenAI SDKs raise an APIError for an `error` event.
            request.state["finished"] = True
            await send({"type": "http.response.body", "body": b"data: " + exc.body() + b"\n\n"})
            return None
        finally:
            self.streams_in_flight -= 1
            if self.metrics is not None:
                self.metrics.streams_in_flight.dec()
        request.state["finished"] = True
        await send({"type": "http.response.body", "body": b""})
        return tail.usage() if event_stream else None


class _FailedBeforeFirstByte(Exception):
    """The upstream answered, then failed before anything reached the client: another deployment may serve."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


async def _cancel_on_disconnect(request: Request, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in this task; cancel it if the client disconnects before it finished."""
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
        await work
    except asyncio.CancelledError:
        # Swallow only our own cancel: when someone else cancelled this task too (a server or an in-process
        # caller shutting down; a transport reports "disconnect" then as well), it must go on unwinding.
        if not disconnected or task.uncancel() > 0:
            raise
        request.state["client_disconnected"] = True
    finally:
        watcher.cancel()


def _log_body(what: str, body: Body) -> None:
    # Only with `logging.log_bodies: true`, a debugging aid; keys travel in headers and are never logged.
    log.debug("%s: %s", what, body[:4096].decode("utf-8", "replace"))


def _content_length(raw: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in raw:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _is_event_stream(headers: RawHeaders) -> bool:
    return any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers)
