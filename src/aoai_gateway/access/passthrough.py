"""`auth: passthrough`: the caller's own key goes upstream and nothing is counted here (the old proxy's model).

access = PassthroughAccess()
access.upstream_key(request)      # the caller's `Authorization: Bearer` or `api-key`, else None
"""

from __future__ import annotations

from ..api_call import Call
from ..config import Settings
from ..exchange import Exchange
from ..http.credentials import client_key
from ..http.request import Request
from .base import Grant


class PassthroughAccess:
    async def authenticate(self, request: Request) -> None:
        return None  # the upstream checks the key it is given

    def upstream_key(self, request: Request) -> str | None:
        return client_key(request.headers)

    async def admit(self, request: Request, call: Call) -> Grant | None:
        return None

    async def settle(self, grant: Grant, exchange: Exchange) -> None:
        return None

    async def charge(self, exchange: Exchange) -> bool:
        return True

    async def visible_models(self, request: Request, models: list[str]) -> list[str] | None:
        return None

    def finished(self, exchange: Exchange) -> None:
        return None

    async def readiness(self) -> dict[str, str]:
        return {}  # nothing behind it but the upstreams, which routing handles

    async def close(self) -> None:
        return None


async def open_passthrough(settings: Settings) -> PassthroughAccess:
    return PassthroughAccess()
