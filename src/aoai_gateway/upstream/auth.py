"""How the gateway proves itself upstream, per deployment: a key it holds, or an Entra ID credential's tokens.

    auths = await open_upstream_auth(router.deployments(), stack)   # health -> UpstreamAuth, closed by `stack`
    auth = auths.get(health)                  # None: the deployment uses the caller's key (passthrough)
    headers = auth.static if auth.static is not None else await auth.headers()

A key's headers are known at start-up (`static`), so a key deployment's hot path has nothing to await; a token
deployment awaits `headers()`, which is a clock read while its cached token is fresh (entra/tokens.py).
Deployments with equal `entra:` settings share one credential, so one token cache serves them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..balancing import DeploymentHealth
    from ..config.entra import EntraSettings

Headers = list[tuple[str, str]]
# The auth headers for a request to one deployment (`ProxyService.upstream_credentials`): the gateway's own
# credential, else the caller's key.
Credentials = Callable[["DeploymentHealth", str | None], Awaitable[Headers]]


class UpstreamAuth(Protocol):
    static: Headers | None  # the headers when they never change (a key); None: await headers()

    async def headers(self) -> Headers:
        """The auth headers for the next upstream request; raises UpstreamTokenUnavailable when none can be had."""


class KeyAuth:
    """A key the gateway holds, in the header its provider names (`api-key`, or `Authorization: Bearer`)."""

    def __init__(self, headers: Headers) -> None:
        self.static: Headers | None = headers

    async def headers(self) -> Headers:
        return list(self.static or ())


async def open_upstream_auth(
    deployments: Iterable[DeploymentHealth], stack: AsyncExitStack
) -> dict[DeploymentHealth, UpstreamAuth]:
    """The gateway-held credential of each deployment that has one; token credentials are closed by `stack`."""
    from ..providers import PROVIDERS

    table: dict[DeploymentHealth, UpstreamAuth] = {}
    shared: dict[EntraSettings, UpstreamAuth] = {}
    for health in deployments:
        deployment = health.deployment
        if deployment.entra is not None:
            auth = shared.get(deployment.entra)
            if auth is None:
                from ..entra import EntraTokenAuth, open_credential

                token_auth = EntraTokenAuth(open_credential(deployment.entra), deployment.entra)
                stack.push_async_callback(token_auth.aclose)
                auth = shared[deployment.entra] = token_auth
            table[health] = auth
        elif deployment.key is not None:
            table[health] = KeyAuth(PROVIDERS[deployment.provider].auth_headers(deployment.key))
    return table


__all__ = ["Headers", "KeyAuth", "UpstreamAuth", "open_upstream_auth"]
