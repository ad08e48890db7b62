"""Operator routes: `GET /admin/deployments` (master key) and `GET /metrics` (Prometheus).

curl -H "Authorization: Bearer $AOAI_GATEWAY_MASTER_KEY" http://127.0.0.1:8080/admin/deployments

With a master key set, `/metrics` wants it too (Prometheus sends it with `authorization: {credentials: ...}`),
unless `admin.public_metrics` opens it.
"""

from __future__ import annotations

import hmac

import orjson

from ..balancing import DeploymentRouter
from ..config import AdminSettings
from ..errors import AuthenticationError, GatewayError
from ..http.asgi import Send
from ..http.credentials import client_key
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_bytes, send_json
from ..metrics import GatewayMetrics


class AdminDisabled(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "admin_disabled"


def require_master_key(request: Request, settings: AdminSettings) -> None:
    if settings.master_key is None:
        raise AdminDisabled("The admin API is off: set AOAI_GATEWAY_MASTER_KEY (or admin.master_key) to enable it.")
    given = client_key(request.headers)
    expected = settings.master_key.get_secret_value()
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationError("The admin API needs the master key as 'Authorization: Bearer KEY'.")


def add_admin_routes(
    router: Router, settings: AdminSettings, deployments: DeploymentRouter, metrics: GatewayMetrics | None
) -> None:
    async def list_deployments(request: Request, send: Send, params: dict[str, str]) -> None:
        require_master_key(request, settings)
        await send_json(send, 200, orjson.dumps({"object": "list", "data": deployments.snapshot()}))

    router.add("/admin/deployments", ["GET"], list_deployments)

    if metrics is not None:

        async def render_metrics(request: Request, send: Send, params: dict[str, str]) -> None:
            if settings.master_key is not None and not settings.public_metrics:
                require_master_key(request, settings)
            await send_bytes(send, 200, metrics.render(), [(b"content-type", b"text/plain; version=0.0.4")])

        router.add("/metrics", ["GET"], render_metrics)
