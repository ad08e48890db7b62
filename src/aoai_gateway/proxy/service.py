"""Forwarding one call to a deployment of its model, failing over, and relaying the answer.

    service = ProxyService(deployments, access, clients, headers, metrics=metrics)
    await service.forward(request, send, call)      # writes what happened to request.exchange

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
from collections.abc import Mapping
from typing import Any

from ..access.base import Access
from ..api_call import Call
from ..balancing import DeploymentHealth, DeploymentRouter, retry_after_seconds, retryable_status
from ..balancing.affinity import ResponseAffinity, ResponseIdCapture
from ..errors import (
    AuthenticationError,
    GatewayError,
    ModelNotFound,
    NoDeploymentAvailable,
    PayloadTooLarge,
    UpstreamCredentialsRefused,
    UpstreamError,
    UpstreamPoolFull,
    UpstreamTimeout,
    UpstreamTokenUnavailable,
)
from ..exchange import Exchange, Usage
from ..http.asgi import SERVER_HOOKS, RawHeaders, Send, ServerHooks
from ..http.request import Request
from ..http.spool import Body
from ..metrics import GatewayMetrics
from ..providers import PROVIDERS
from ..upstream import UpstreamClient, UpstreamRequest, UpstreamResponse
from ..upstream.auth import Headers, UpstreamAuth
from ..upstream.base import PushingResponse
from .bridge import BridgedResponse, chat_to_responses
from .headers import RequestHeaderRules, response_head
from .usage import StreamTail, UsageChunkFilter, usage_of_body

log = logging.getLogger("aoai_gateway.proxy")

_URL_CACHE_SIZE = 1024
# Bodies up to this size with a Content-Length are read whole: one write back to the client is cheaper.
_WHOLE_BODY_MAX = 1024 * 1024


class AbortResponse(Exception):
    """Close the client connection without finishing the body, so the client sees it is incomplete."""


class ProxyService:
    """Built once with everything it uses: the routing table, the access mode, a client per provider."""

    def __init__(
        self,
        router: DeploymentRouter,
        access: Access,
        clients: Mapping[str, UpstreamClient],
        headers: RequestHeaderRules,
        *,
        metrics: GatewayMetrics | None = None,
        upload_limits: Mapping[str, int] | None = None,
        log_bodies: bool = False,
        affinity: ResponseAffinity | None = None,
        upstream_auth: Mapping[DeploymentHealth, UpstreamAuth] | None = None,
    ) -> None:
        self.router = router
        self.access = access
        self.clients = clients  # provider name -> the client that reaches its deployments
        self.headers = headers
        self.metrics = metrics
        # Largest multipart upload each provider takes (Azure's 25 MiB; local models more), once the model is known.
        self.upload_limits = dict(upload_limits or {})
        self.max_upload_bytes = max(self.upload_limits.values(), default=None)
        self.log_bodies = log_bodies
        self.affinity = affinity  # where stored responses live (Responses API); None: not remembered
        # The gateway's own credential per deployment (a key, an Entra ID credential); absent: the caller's key.
        self.upstream_auth = dict(upstream_auth or {})
        self.streams_in_flight = 0
        # Upstream URLs of calls with no query of their own, by deployment, operation and client api-version:
        # built once each (quoting and urlencode cost more than the rest of the URL work together).
        self._urls: dict[tuple[DeploymentHealth, str, str | None], str] = {}

    async def upstream_credentials(self, health: DeploymentHealth, caller_key: str | None) -> Headers:
        """The auth headers a request to `health`'s deployment carries: the gateway's own credential, else the
        caller's key. For routes beyond `forward()` (WebSocket relays, uploads); raises AuthenticationError when
        there is none and UpstreamTokenUnavailable when a token cannot be had."""
        auth = self.upstream_auth.get(health)
        if auth is not None:
            return auth.static if auth.static is not None else await auth.headers()
        provider = PROVIDERS[health.deployment.provider]
        if caller_key is None:
            if provider.requires_key:
                raise _no_key()
            return []
        return provider.auth_headers(caller_key)

    async def forward(self, request: Request, send: Send, call: Call) -> None:
        exchange = request.exchange
        sticky = None
        if call.response_id is not None and self.affinity is not None:
            sticky = await self.affinity.group_for(call, exchange.key_id)
        try:
            group = sticky or self.router.group(call.model)
        except ModelNotFound:
            # In keys mode the list names only what the caller's key may use.
            visible = await self.access.visible_models(request, self.router.models)
            raise ModelNotFound(call.model, available=self.router.models if visible is None else visible) from None
        exchange.model = group[0].deployment.model  # an Azure deployment name counts as its model
        if self.log_bodies:
            _log_body("request body", call.body)
        grant = await self.access.admit(request, call)
        try:
            with _DisconnectGuard(request):
                await self._attempts(request, send, call, group)
        finally:
            if grant is not None:
                await self.access.settle(grant, exchange)

    async def _attempts(self, request: Request, send: Send, call: Call, group: list[DeploymentHealth]) -> None:
        settings = self.router.settings
        exchange = request.exchange
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.deadline_seconds
        caller_key = self.access.upstream_key(request)
        query = [(k, v) for k, v in (call.query if call.query is not None else request.query) if k != "api-version"]
        forwarded = self.headers.upstream(request.scope["headers"])
        tried: set[DeploymentHealth] = set()
        failure: UpstreamError | AuthenticationError | PayloadTooLarge | None = None
        for attempt in range(settings.max_attempts):
            health = self.router.next(group, tried)
            if health is None:
                break
            tried.add(health)
            deployment = health.deployment
            exchange.deployment = deployment.deployment
            exchange.attempts = attempt + 1
            provider = PROVIDERS[deployment.provider]
            auth = self.upstream_auth.get(health)
            if auth is None:  # the caller's key, as it came (passthrough)
                if caller_key is None and provider.requires_key:
                    failure = _no_key()
                    continue
                auth_headers = provider.auth_headers(caller_key) if caller_key else []
            elif auth.static is not None:  # a key the gateway holds: nothing to await
                auth_headers = auth.static
            else:  # a token: awaited only for Entra ID deployments
                try:
                    auth_headers = await auth.headers()
                except UpstreamTokenUnavailable as exc:
                    health.breaker.record(success=False, now=self.router.clock())
                    self._count(health, exc.code or "upstream_error", None, attempt > 0)
                    failure = exc
                    continue
            limit = self.upload_limits.get(deployment.provider)
            if call.form is not None and limit is not None and len(call.body) > limit:
                failure = PayloadTooLarge(limit)
                continue
            # A chat call to a model that answers only on Responses is translated there and back (bridge.py).
            bridge = call.document if deployment.api == "responses" and call.operation == "chat/completions" else None
            operation = "responses" if bridge is not None else call.operation
            body: Body
            if bridge is not None:
                body = chat_to_responses(bridge, deployment.deployment)
            else:
                body = call.body_with_model(provider.body_model(deployment, call.operation))
            upstream = UpstreamRequest(
                call.method,
                self._url(health, operation, query, call.client_api_version),
                [*forwarded, *auth_headers],
                body,
                deployment=deployment.deployment,
                operation=operation,
                form=call.form if body is call.body else None,  # still the body the form was parsed from
            )
            last = (
                len(group) == 1
                or attempt + 1 >= settings.max_attempts
                or loop.time() >= deadline
                or not self.router.has_next(group, tried)
            )
            # A 429 on the last try of a group says less than "every deployment is busy until T": answer that.
            final = last and len(group) == 1
            capture = None
            if call.operation == "responses" and self.affinity is not None and self.affinity.enabled:
                capture = ResponseIdCapture(self.affinity, deployment, exchange.key_id)
            try:
                if await self._attempt(
                    request, send, health, upstream, call.stream, deadline, last, final, attempt > 0, capture, bridge
                ):
                    return
                failure = None
            except UpstreamError as exc:
                if last:
                    raise
                failure = exc
        if failure is not None:
            raise failure
        raise NoDeploymentAvailable(exchange.model or call.model, self.router.retry_after(group))

    def _url(self, health: DeploymentHealth, operation: str, query: list[tuple[str, str]], version: str | None) -> str:
        deployment = health.deployment
        if query:
            return PROVIDERS[deployment.provider].url(deployment, operation, query, version)
        key = (health, operation, version)
        url = self._urls.get(key)
        if url is None:
            url = PROVIDERS[deployment.provider].url(deployment, operation, query, version)
            if len(self._urls) >= _URL_CACHE_SIZE:  # versions are client text: keep the cache bounded
                self._urls.clear()
            self._urls[key] = url
        return url

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
        capture: ResponseIdCapture | None = None,
        bridge: dict[str, Any] | None = None,
    ) -> bool:
        """One try on one deployment; True when the client got its answer, False to try the next deployment.

        `last`: no other deployment can be tried, so a retryable answer is relayed as it is, except a 429 when
        `final` is false (the caller then answers with the group's soonest retry time).
        """
        client = self.clients[health.deployment.provider]
        exchange = request.exchange
        clock = self.router.clock
        now = clock()
        health.in_flight += 1
        health.requests.add(now, 1)
        model, name = health.deployment.model, health.deployment.deployment
        started = time.perf_counter()
        # The routing deadline bounds the wait for an answer's head: a timer that cancels this task (lighter than
        # `asyncio.timeout_at`, which this was; the same cancel accounting).
        deadline_timer = _DeadlineTimer(deadline)
        try:
            try:
                try:
                    response = await client.send(upstream, stream=stream)
                    if bridge is not None:
                        response = await BridgedResponse.open(response, stream, bridge)
                finally:
                    deadline_timer.cancel()
            except asyncio.CancelledError:
                if deadline_timer.expired():
                    raise UpstreamTimeout("The upstream request timed out: the routing deadline passed.") from None
                raise
            except UpstreamPoolFull:
                raise  # the gateway's own limit, no deployment's fault: nothing was sent
            except UpstreamError as exc:
                health.breaker.record(success=False, now=clock())
                self._count(health, exc.code or "upstream_error", None, retry)
                log.warning("deployment %s failed: %s", name, exc.message)
                raise
            except GatewayError as exc:
                # An in-process model's refusal: an answer like an upstream's (a full queue is its 429).
                return self._refused(health, exc, last, final, retry)
            seconds = time.perf_counter() - started
            exchange.upstream_ms = round(seconds * 1000, 3)
            health.observe_latency(seconds * 1000)
            status = response.status
            outcome = "ok" if status < 400 else f"http_{status}"
            if status in (401, 403) and health in self.upstream_auth:
                # The gateway's own upstream key was refused: not the caller's fault, and another deployment
                # (another key) may serve. The caller learns that much, never the upstream's details.
                await response.release()
                health.breaker.record(success=False, now=clock())
                self._count(health, "upstream_auth_refused", seconds, retry)
                log.warning("deployment %s refused the gateway's upstream key (HTTP %d)", name, status)
                if last:
                    raise UpstreamCredentialsRefused(name)
                return False
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
                    usage = await self._relay(request, send, response, stream, capture)
                except _FailedBeforeFirstByte as failed:
                    health.breaker.record(success=False, now=clock())
                    self._count(health, failed.error.code or "upstream_error", seconds, retry)
                    if last:
                        raise failed.error from None
                    return False
                health.breaker.record(success=True, now=clock())
                self._count(health, outcome, seconds, retry)
            if usage is not None:
                exchange.usage = usage
                health.tokens.add(clock(), usage[0] + usage[1])
                if self.metrics is not None:
                    self.metrics.usage(model, name, *usage)
            return True
        finally:
            health.in_flight -= 1

    def _refused(self, health: DeploymentHealth, error: GatewayError, last: bool, final: bool, retry: bool) -> bool:
        """False to try the next deployment after a retryable refusal; raise it when it is the caller's answer."""
        clock = self.router.clock
        if retryable_status(error.status):
            wait = retry_after_seconds([(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()])
            if error.status == 429 or wait is not None:
                fallback = self.router.settings.default_cooldown_seconds
                health.cool_down(fallback if wait is None else wait, clock())
            health.breaker.record(success=error.status == 429, now=clock())
            self._count(health, f"http_{error.status}", None, retry)
            if not last or (error.status == 429 and not final):
                return False
        else:
            health.breaker.record(success=True, now=clock())
            self._count(health, f"http_{error.status}", None, retry)
        raise error

    def _count(self, health: DeploymentHealth, outcome: str, seconds: float | None, retry: bool) -> None:
        health.count(outcome)
        if self.metrics is not None:
            self.metrics.attempt(health.deployment.model, health.deployment.deployment, outcome, seconds, retry)

    async def relay(self, request: Request, send: Send, response: UpstreamResponse, *, stream: bool) -> None:
        """Relay one upstream answer as it is, without failover (files and batches live on one resource)."""
        try:
            await self._relay(request, send, response, stream)
        except _FailedBeforeFirstByte as failed:
            raise failed.error from None

    async def _relay(
        self,
        request: Request,
        send: Send,
        response: UpstreamResponse,
        stream: bool,
        capture: ResponseIdCapture | None = None,
    ) -> Usage | None:
        exchange = request.exchange
        try:
            headers, length, event_stream, request_id = response_head(response.raw_headers)
            if request_id is not None:
                exchange.upstream_request_id = request_id
            exchange.audio_seconds = response.audio_seconds  # in-process speech models report it; HTTP ones 0
            if exchange.audio_seconds:
                headers.append((b"x-gateway-audio-seconds", f"{exchange.audio_seconds:.3f}".encode()))
            if response.status != 200:
                capture = None
            if stream or length is None or length > _WHOLE_BODY_MAX or event_stream:
                return await self._relay_stream(request, send, response, headers, event_stream, capture)
            try:
                body = await response.read()
            except UpstreamError as exc:
                raise _FailedBeforeFirstByte(exc) from exc
            if self.log_bodies:
                _log_body("response body", body)
            headers.append((b"content-length", str(len(body)).encode()))
            if capture is not None:
                await capture.feed(body)  # before the client can ask for a follow-up
            exchange.finished = True
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return usage_of_body(body) if response.status == 200 else None
        finally:
            await response.release()

    async def _relay_stream(
        self,
        request: Request,
        send: Send,
        response: UpstreamResponse,
        headers: RawHeaders,
        event_stream: bool,
        capture: ResponseIdCapture | None = None,
    ) -> Usage | None:
        chunks = response.iter_chunks()
        # Nothing goes to the client before the upstream's first chunk: until then another deployment may serve.
        try:
            first = await anext(chunks, b"")
        except UpstreamError as exc:
            raise _FailedBeforeFirstByte(exc) from exc
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        tail = StreamTail()
        exchange = request.exchange
        hidden = UsageChunkFilter() if event_stream and exchange.strip_usage else None
        self.streams_in_flight += 1  # the metrics' gauge reads it when scraped
        pushing = response if hidden is None and isinstance(response, PushingResponse) else None
        hooks = _server_hooks(request) if pushing is not None else None
        try:
            chunk = first
            while chunk:
                if event_stream:
                    tail.feed(chunk)
                if hidden is not None:
                    chunk = hidden.feed(chunk)
                if capture is not None and await capture.feed(chunk):
                    capture = None
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if pushing is not None and hooks is not None and capture is None:
                    await _push(pushing, hooks, exchange, tail if event_stream else None)
                    break
                chunk = await anext(chunks, b"")
            if hidden is not None and (rest := hidden.rest()):
                await send({"type": "http.response.body", "body": rest, "more_body": True})
        except asyncio.CancelledError:
            # The client left mid-stream (often right after `[DONE]`, before the body's end was relayed): what the
            # upstream reported it used still counts, for the ledger and the caps.
            if event_stream and exchange.usage is None:
                exchange.usage = tail.usage()
            raise
        except UpstreamError as exc:
            exchange.stream_error = exc.code
            log.warning("upstream stream ended early: %s", exc.message)
            if not event_stream:
                raise AbortResponse from exc
            # The status is already sent; the OpenAI SDKs raise an APIError for an `error` event.
            exchange.finished = True
            await send({"type": "http.response.body", "body": b"data: " + exc.body() + b"\n\n"})
            return None
        finally:
            self.streams_in_flight -= 1
        exchange.finished = True
        await send({"type": "http.response.body", "body": b""})
        return tail.usage() if event_stream else None


async def _push(response: PushingResponse, hooks: ServerHooks, exchange: Exchange, tail: StreamTail | None) -> None:
    """The rest of a stream, each chunk written to the client from the upstream connection's read callback: no
    task switch per chunk. Back-pressure both ways: a full client buffer stops reading upstream until it drains."""
    push = hooks.push

    def sink(chunk: bytes) -> bool:
        if tail is not None:
            tail.feed(chunk)
        exchange.bytes_out += len(chunk)
        return push(chunk)

    hooks.on_writable = response.resume
    try:
        await response.push_to(sink)
    finally:
        hooks.on_writable = None


def _no_key() -> AuthenticationError:
    return AuthenticationError(
        "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'api-key: KEY', "
        "or configure api_key for this deployment on the gateway."
    )


class _DeadlineTimer:
    """Cancels the current task at `deadline` (loop time). After a CancelledError, `expired()` says whether this
    timer did it, and then takes that cancel back (as `asyncio.timeout` does): a cancel from elsewhere (the client
    went away, shutdown) stays a cancel."""

    __slots__ = ("_fired", "_handle", "_task")

    def __init__(self, deadline: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._fired = False
        self._handle = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def cancel(self) -> None:
        self._handle.cancel()

    def expired(self) -> bool:
        return self._fired and self._task.uncancel() == 0


class _FailedBeforeFirstByte(Exception):
    """The upstream answered, then failed before anything reached the client: another deployment may serve."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


class _DisconnectGuard:
    """`with _DisconnectGuard(request): await work`: the task is cancelled if the client disconnects before the
    work finished, and that cancel ends here (the exchange says so); any other cancel goes on unwinding.

    Under the gateway's own server protocol the connection's loss calls back (`ServerHooks`, http/protocol.py);
    elsewhere (another ASGI server, an in-process call) a watcher task waits on `receive()` for the disconnect.
    A context manager rather than a wrapping coroutine: no extra frame to resume at every await below it.
    """

    __slots__ = ("_disconnected", "_exchange", "_hooks", "_request", "_task", "_watcher")

    def __init__(self, request: Request) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._request = request
        self._exchange = request.exchange
        self._disconnected = False
        self._hooks = _server_hooks(request)
        self._watcher: asyncio.Task[None] | None = None

    def __enter__(self) -> None:
        if self._hooks is not None:
            self._hooks.on_disconnect = self._lost
        else:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> bool:
        if self._hooks is not None:
            self._hooks.on_disconnect = None
        if self._watcher is not None:
            self._watcher.cancel()
        # Swallow only our own cancel: when someone else cancelled this task too (a server or an in-process
        # caller shutting down; a transport reports "disconnect" then as well), it must go on unwinding.
        if (
            kind is not None
            and issubclass(kind, asyncio.CancelledError)
            and self._disconnected
            and self._task.uncancel() == 0
        ):
            self._exchange.client_disconnected = True
            return True
        return False

    def _lost(self) -> None:
        # After the last byte went out, the server reports "disconnect" too: that is not a cancel.
        if not self._exchange.finished:
            self._disconnected = True
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                self._lost()
                return


def _server_hooks(request: Request) -> ServerHooks | None:
    extensions = request.scope.get("extensions")
    hooks = extensions.get(SERVER_HOOKS) if extensions else None
    return hooks if isinstance(hooks, ServerHooks) else None


def _log_body(what: str, body: Body) -> None:
    # Only with `logging.log_bodies: true`, a debugging aid; keys travel in headers and are never logged.
    log.debug("%s: %s", what, body[:4096].decode("utf-8", "replace"))
