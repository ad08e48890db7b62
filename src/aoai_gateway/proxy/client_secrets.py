"""Ephemeral keys for realtime clients (`POST /v1/realtime/client_secrets`), forwarded like other calls.

    secrets = ClientSecrets(deployments, access, clients, headers, metrics=metrics)
    await secrets.create(request, send, body)

The model is named in the body's `session.model`, not at its top, so this is not one of the generic operations:
the session's model picks the deployments, and each attempt sends `session.model` as that deployment's name to
`{endpoint}/openai/v1/realtime/client_secrets` (Azure has it on the v1 surface only) or `{endpoint}/realtime/
client_secrets` (`provider: openai`). Admission is a request's: key, allowlist, rate limits. Failover as for any
call: connect errors, timeouts, 408/429/5xx go to the next deployment; the last answer is relayed whole.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson

from ..access.base import Access
from ..api_call import Call, parse_json
from ..balancing import DeploymentHealth, DeploymentRouter, retry_after_seconds, retryable_status
from ..errors import (
    AuthenticationError,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    UpstreamError,
    UpstreamTokenUnavailable,
)
from ..http.asgi import Send
from ..http.request import Request
from ..metrics import GatewayMetrics
from ..providers import PROVIDERS
from ..upstream import UpstreamClient, UpstreamRequest
from ..upstream.auth import Credentials
from .headers import RequestHeaderRules, response_headers

OPERATION = "realtime/client_secrets"


class ClientSecrets:
    def __init__(
        self,
        router: DeploymentRouter,
        access: Access,
        clients: Mapping[str, UpstreamClient],
        headers: RequestHeaderRules,
        credentials: Credentials,
        *,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.router = router
        self.access = access
        self.clients = clients
        self.headers = headers
        self.credentials = credentials  # the upstream auth headers per deployment (ProxyService.upstream_credentials)
        self.metrics = metrics

    async def create(self, request: Request, send: Send, body: bytes) -> None:
        exchange = request.exchange
        document = parse_json(body)
        session = document.get("session")
        model = session.get("model") if isinstance(session, dict) else None
        if not isinstance(model, str) or not model:
            raise InvalidRequest(
                "You must provide session.model, the realtime model the key is for.",
                param="session.model",
                code="missing_required_parameter",
            )
        assert isinstance(session, dict)
        try:
            group = self.router.group(model)
        except ModelNotFound:
            visible = await self.access.visible_models(request, self.router.models)
            raise ModelNotFound(model, available=self.router.models if visible is None else visible) from None
        exchange.model = group[0].deployment.model
        grant = await self.access.admit(request, Call(OPERATION, model, body, document={}))
        try:
            await self._attempts(request, send, group, document, session)
        finally:
            if grant is not None:
                await self.access.settle(grant, exchange)

    async def _attempts(
        self,
        request: Request,
        send: Send,
        group: list[DeploymentHealth],
        document: dict[str, object],
        session: dict[str, object],
    ) -> None:
        exchange = request.exchange
        settings = self.router.settings
        clock = self.router.clock
        caller_key = self.access.upstream_key(request)
        forwarded = self.headers.upstream(request.scope["headers"])
        tried: set[DeploymentHealth] = set()
        failure: UpstreamError | AuthenticationError | InvalidRequest | None = None
        for attempt in range(settings.max_attempts):
            health = self.router.next(group, tried)
            if health is None:
                break
            tried.add(health)
            deployment = health.deployment
            provider = PROVIDERS[deployment.provider]
            url = provider.realtime_url(deployment, None)
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
            body = orjson.dumps({**document, "session": {**session, "model": deployment.deployment}})
            upstream = UpstreamRequest(
                "POST",
                client_secrets_url(url),
                [*forwarded, *credentials],
                body,
                deployment=deployment.deployment,
                operation=OPERATION,
            )
            last = attempt + 1 >= settings.max_attempts or not self.router.has_next(group, tried)
            started = time.perf_counter()
            try:
                response = await self.clients[deployment.provider].send(upstream, stream=False)
                try:
                    answer = await response.read()
                finally:
                    await response.release()
            except UpstreamError as exc:
                health.breaker.record(success=False, now=clock())
                self._count(health, exc.code or "upstream_error", None, attempt > 0)
                failure = exc
                continue
            seconds = time.perf_counter() - started
            exchange.upstream_ms = round(seconds * 1000, 3)
            status = response.status
            self._count(health, "ok" if status < 400 else f"http_{status}", seconds, attempt > 0)
            if retryable_status(status) and not last:
                if status == 429:
                    wait = retry_after_seconds(response.raw_headers)
                    health.cool_down(settings.default_cooldown_seconds if wait is None else wait, clock())
                health.breaker.record(success=status == 429, now=clock())
                continue
            health.breaker.record(success=status < 500, now=clock())
            headers = response_headers(response.raw_headers)
            headers.append((b"content-length", str(len(answer)).encode()))
            exchange.finished = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        if failure is not None:
            raise failure
        raise NoDeploymentAvailable(exchange.model or "", self.router.retry_after(group))

    def _count(self, health: DeploymentHealth, outcome: str, seconds: float | None, retry: bool) -> None:
        health.count(outcome)
        if self.metrics is not None:
            self.metrics.attempt(health.deployment.model, health.deployment.deployment, outcome, seconds, retry)


def client_secrets_url(realtime_url: str) -> str:
    """The client-secrets URL beside a deployment's realtime URL: Azure's v1 route even for dated deployments."""
    base = realtime_url.split("?", 1)[0]
    if base.endswith("/openai/realtime"):  # the dated (preview) route has no client secrets: GA's v1 has
        base = base.removesuffix("/openai/realtime") + "/openai/v1/realtime"
    return base + "/client_secrets"
