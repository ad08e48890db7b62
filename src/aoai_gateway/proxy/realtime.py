"""Realtime API sessions: one client WebSocket relayed to one upstream WebSocket, frames both ways in order.

    relay = RealtimeRelay(deployments, access, clients, headers, settings.realtime, settings.upstream.timeouts)
    await relay.session(socket, model="gpt-realtime", client_api_version=None)

The handshake is where everything is decided, before the client's WebSocket is accepted: the key (headers, or
the `openai-insecure-api-key.KEY` subprotocol browsers send), the model and its allowlist, rate limits (a session
counts as one request), and an upstream session opened on a deployment of the model, failing over like any
request (connect errors, 408/429/5xx handshakes). A refusal is an HTTP answer with OpenAI's error JSON.

Then two pumps relay messages, each in its own direction and in order, text as text and binary as binary, and a
watchdog closes a session with nothing relayed for `realtime.idle_timeout_seconds`, or with a message stuck that
long on its way to a side that stopped reading. Either side's close closes the other with its code (codes that
may not be sent on the wire become 1000/1001; an upstream lost without a close frame is 1011 to the client).

Usage is booked per response: each upstream `response.done` with `usage.input_tokens` / `output_tokens` becomes
a usage-ledger row of its own (route of the session, status 200), the token metrics, and a charge against the
key's token caps; once a cap is used up, the session is closed with 1008 after that response. The session's own
record (status 101, no tokens) goes to every listener when it ends: access log, request metrics, ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from ..access.base import Access
from ..api_call import Call
from ..balancing import DeploymentHealth, DeploymentRouter, retryable_status
from ..config import RealtimeSettings, Timeouts
from ..errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    UpstreamCredentialsRefused,
    UpstreamError,
    UpstreamSessionRefused,
    UpstreamTokenUnavailable,
)
from ..exchange import Exchange
from ..http.credentials import client_key
from ..http.websocket import WebSocket, sendable_close_code
from ..metrics import GatewayMetrics
from ..providers import PROVIDERS
from ..upstream import UpstreamClient, UpstreamWebSocket, WebSocketRequest
from ..upstream.auth import Credentials
from .headers import RequestHeaderRules

log = logging.getLogger("aoai_gateway.realtime")

_SUBPROTOCOL = "realtime"
_KEY_PROTOCOL = "openai-insecure-api-key."  # browsers cannot set headers on a WebSocket: the key comes as this
_RESPONSE_DONE = '"response.done"'


class RealtimeRelay:
    """Built once with what it uses; `session()` serves one client WebSocket from handshake to close."""

    def __init__(
        self,
        router: DeploymentRouter,
        access: Access,
        clients: Mapping[str, UpstreamClient],
        headers: RequestHeaderRules,
        credentials: Credentials,
        settings: RealtimeSettings,
        timeouts: Timeouts,
        *,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.router = router
        self.access = access
        self.clients = clients
        self.headers = headers
        self.credentials = credentials  # the upstream auth headers per deployment (ProxyService.upstream_credentials)
        self.settings = settings
        self.connect_timeout = timeouts.connect
        self.metrics = metrics
        self.sessions_open = 0

    async def session(self, socket: WebSocket, model: str | None, client_api_version: str | None) -> None:
        """Admit, open upstream, accept, relay until either side closes (or the session idles), close both."""
        _key_from_subprotocol(socket)
        try:
            upstream, health = await self._open(socket, model, client_api_version)
        except GatewayError as exc:
            if isinstance(exc, UpstreamError):
                log.warning("realtime session not opened: %s", exc.message)
            await socket.refuse(exc)
            return
        try:
            await socket.accept(_SUBPROTOCOL if _SUBPROTOCOL in socket.subprotocols else None)
        except Exception:  # the client left while the upstream session was being opened
            await upstream.close(1001, "client gone")
            socket.exchange.client_disconnected = True
            return
        health.in_flight += 1
        self.sessions_open += 1
        if self.metrics is not None:
            self.metrics.realtime_sessions.inc()
        try:
            await _Session(self, socket, upstream, health).run()
        finally:
            health.in_flight -= 1
            self.sessions_open -= 1
            if self.metrics is not None:
                self.metrics.realtime_sessions.dec()

    async def _open(
        self, socket: WebSocket, model: str | None, client_api_version: str | None
    ) -> tuple[UpstreamWebSocket, DeploymentHealth]:
        request = socket.request
        exchange = socket.exchange
        await self.access.authenticate(request)  # before anything about models is said
        if not model:
            raise InvalidRequest(
                "You must provide a model query parameter, e.g. /v1/realtime?model=gpt-realtime.",
                param="model",
                code="missing_required_parameter",
            )
        try:
            group = self.router.group(model)
        except ModelNotFound:
            visible = await self.access.visible_models(request, self.router.models)
            raise ModelNotFound(model, available=self.router.models if visible is None else visible) from None
        exchange.model = group[0].deployment.model
        # A session counts as one request; its reservation only checks that the key has tokens left, and is
        # released once the session is open: each response is charged as it finishes.
        grant = await self.access.admit(request, Call("realtime", model, b"", document={}))
        try:
            return await self._connect(socket, group, client_api_version)
        finally:
            if grant is not None:
                await self.access.settle(grant, exchange)

    async def _connect(
        self, socket: WebSocket, group: list[DeploymentHealth], client_api_version: str | None
    ) -> tuple[UpstreamWebSocket, DeploymentHealth]:
        request = socket.request
        exchange = socket.exchange
        settings = self.router.settings
        caller_key = self.access.upstream_key(request)
        forwarded = self.headers.upstream(request.scope["headers"])
        protocols = (_SUBPROTOCOL,) if _SUBPROTOCOL in socket.subprotocols else ()
        tried: set[DeploymentHealth] = set()
        failure: GatewayError | None = None
        for attempt in range(settings.max_attempts):
            health = self.router.next(group, tried)
            if health is None:
                break
            tried.add(health)
            deployment = health.deployment
            provider = PROVIDERS[deployment.provider]
            url = provider.realtime_url(deployment, client_api_version)
            if url is None:
                failure = InvalidRequest(f"The model {deployment.model} serves no realtime sessions.", param="model")
                continue
            try:
                credentials = await self.credentials(health, caller_key)
            except (AuthenticationError, UpstreamTokenUnavailable) as exc:
                failure = exc
                continue
            exchange.deployment = deployment.deployment
            exchange.attempts = attempt + 1
            upstream = WebSocketRequest(
                url,
                [*forwarded, *credentials],
                protocols,
                self.settings.max_frame_bytes,
                deployment.deployment,
                client_key(request.headers),
            )
            started = time.perf_counter()
            clock = self.router.clock
            try:
                opened = await self.clients[deployment.provider].connect_websocket(upstream, self.connect_timeout)
            except UpstreamSessionRefused as exc:
                seconds = time.perf_counter() - started
                self._count(health, f"http_{exc.status}", seconds, attempt > 0)
                if exc.status in (401, 403) and deployment.holds_credential:
                    health.breaker.record(success=False, now=clock())
                    log.warning(
                        "deployment %s refused the gateway's upstream key (HTTP %d)", deployment.deployment, exc.status
                    )
                    failure = UpstreamCredentialsRefused(deployment.deployment)
                    continue
                if not retryable_status(exc.status):
                    raise  # the session itself is at fault (400, 404): another deployment would say the same
                if exc.status == 429:
                    wait = exc.headers.get("retry-after", "")
                    seconds = float(wait) if wait.isdigit() else settings.default_cooldown_seconds
                    health.cool_down(seconds, clock())
                health.breaker.record(success=exc.status == 429, now=clock())
                failure = exc
                continue
            except UpstreamError as exc:
                health.breaker.record(success=False, now=clock())
                self._count(health, exc.code or "upstream_error", None, attempt > 0)
                log.warning("deployment %s failed to open a realtime session: %s", deployment.deployment, exc.message)
                failure = exc
                continue
            seconds = time.perf_counter() - started
            exchange.upstream_ms = round(seconds * 1000, 3)
            health.observe_latency(seconds * 1000)
            health.breaker.record(success=True, now=clock())
            health.requests.add(clock(), 1)
            self._count(health, "ok", seconds, attempt > 0)
            return opened, health
        if failure is not None:
            raise failure
        raise NoDeploymentAvailable(exchange.model or "", self.router.retry_after(group))

    def _count(self, health: DeploymentHealth, outcome: str, seconds: float | None, retry: bool) -> None:
        health.count(outcome)
        if self.metrics is not None:
            self.metrics.attempt(health.deployment.model, health.deployment.deployment, outcome, seconds, retry)

    async def book(self, session: Exchange, health: DeploymentHealth, event: dict[str, Any], started: float) -> bool:
        """One `response.done`: its ledger row, token metrics and charge; False once the key's tokens are spent."""
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return True  # a cancelled or failed response may carry none
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return True
        deployment = health.deployment
        row = Exchange(
            session.request_id,
            session.method,
            session.path,
            started,
            route=session.route,
            model=session.model,
            key=session.key,
            key_id=session.key_id,
            event_id=session.event_id,
            zone=session.zone,
            status=200,
            deployment=deployment.deployment,
            usage=(prompt, completion),
            authenticated=session.authenticated,
            finished=True,
        )
        row.duration = time.perf_counter() - started
        health.tokens.add(self.router.clock(), prompt + completion)
        if self.metrics is not None:
            self.metrics.usage(deployment.model, deployment.deployment, prompt, completion)
        self.access.finished(row)  # the ledger's row for this response; the session's own comes at its end
        return await self.access.charge(row)


class _Session:
    """The two pumps and the watchdog of one open session."""

    __slots__ = ("_books", "_last", "_relay", "_sending", "health", "socket", "upstream")

    def __init__(
        self, relay: RealtimeRelay, socket: WebSocket, upstream: UpstreamWebSocket, health: DeploymentHealth
    ) -> None:
        self._relay = relay
        self.socket = socket
        self.upstream = upstream
        self.health = health
        # An in-process pipeline's model calls were booked as they were made: its `response.done` is not again.
        self._books = PROVIDERS[health.deployment.provider].books_realtime_usage
        self._last = 0.0  # loop time a message was last relayed
        self._sending: list[float] = []  # loop times at which each pump's send in progress began

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        pumps = [
            loop.create_task(self._from_client(loop)),
            loop.create_task(self._from_upstream(loop)),
            loop.create_task(self._watch(loop)),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            ended = next(iter(done)).result()
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        await self._close(ended)

    async def _close(self, ended: str) -> None:
        socket, upstream = self.socket, self.upstream
        if ended == "client":
            await upstream.close(sendable_close_code(socket.close_code), socket.close_reason)
            return
        if ended == "upstream":
            code = upstream.close_code
            if code is None or code == 1006:
                code, reason = 1011, "the upstream connection was lost"
            else:
                code, reason = sendable_close_code(code), upstream.close_reason
            await socket.close(code, reason)
            return
        if ended == "spent":
            code, reason = 1008, "this key's token limit is reached"
        else:
            code, reason = 1001, f"no message for {self._relay.settings.idle_timeout_seconds:g} s"
        await asyncio.gather(socket.close(code, reason), upstream.close(code, reason))

    async def _from_client(self, loop: asyncio.AbstractEventLoop) -> str:
        socket, upstream, sending = self.socket, self.upstream, self._sending
        while (frame := await socket.receive()) is not None:
            sending.append(loop.time())
            try:
                await upstream.send(frame)
            except UpstreamError:
                return "upstream"  # gone: closed with its code (or as lost)
            finally:
                self._last = sending.pop()
        return "client"

    async def _from_upstream(self, loop: asyncio.AbstractEventLoop) -> str:
        socket, upstream, sending = self.socket, self.upstream, self._sending
        session = socket.exchange
        response_started = session.started
        spent = False
        while (frame := await upstream.receive()) is not None:
            if self._books and isinstance(frame, str) and _RESPONSE_DONE in frame:
                event = _event(frame)
                if event is not None and event.get("type") == "response.done":
                    spent = not await self._relay.book(session, self.health, event, response_started)
                    response_started = time.perf_counter()
            sending.append(loop.time())
            try:
                await socket.send(frame)
            except Exception:  # the server says the client is gone (uvicorn's ClientDisconnected)
                return "client"
            finally:
                self._last = sending.pop()
            if spent:
                return "spent"
        return "upstream"

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> str:
        idle = self._relay.settings.idle_timeout_seconds
        while True:
            # A send waiting on a side that stopped reading counts from when it began, not from the last message.
            since = min([self._last, *self._sending])
            left = since + idle - loop.time()
            if left <= 0:
                return "idle"
            await asyncio.sleep(left)


def _event(frame: str) -> dict[str, Any] | None:
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _key_from_subprotocol(socket: WebSocket) -> None:
    """Browsers send the key as the subprotocol `openai-insecure-api-key.KEY`: it becomes an Authorization header
    when the handshake has no credential header of its own (the subprotocol itself never goes upstream). Runs
    before anything reads the request's headers."""
    scope = socket.request.scope
    if any(name.lower() in (b"authorization", b"api-key") for name, _ in scope["headers"]):
        return
    for offered in socket.subprotocols:
        if offered.startswith(_KEY_PROTOCOL) and len(offered) > len(_KEY_PROTOCOL):
            key = offered[len(_KEY_PROTOCOL) :].encode("latin-1", "replace")
            scope["headers"] = [*scope["headers"], (b"authorization", b"Bearer " + key)]
            return
