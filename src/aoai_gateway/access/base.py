"""What the gateway asks of its access mode (`auth:`), and the grant an admitted call carries.

    access = await ACCESS[settings.auth](settings)     # PassthroughAccess or ManagedAccess
    await access.authenticate(request)                 # from the headers alone, before any body byte is read
    grant = await access.admit(request, call)          # allowlist, token caps, rate limits
    ...
    await access.settle(grant, request.exchange)       # the reservation becomes the real usage

Passthrough forwards the caller's own key upstream and checks nothing; `keys` holds the upstream keys and enforces
each gateway key's rules. Both are exchange listeners: the keys mode writes the usage ledger there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..api_call import Call
from ..exchange import Exchange
from ..http.request import Request

if TYPE_CHECKING:
    from ..store.keys import GatewayKey


@dataclass(slots=True)
class Grant:
    """An admitted call: the key, what it reserved against token caps, and the counters to settle."""

    key: GatewayKey
    reservation: int
    token_counters: list[tuple[str, int, int]] = field(default_factory=list)  # (counter, cost, ttl)


class Access(Protocol):
    async def authenticate(self, request: Request) -> None:
        """Check the caller's credential from the headers; raise 401/403 before the body is read."""

    def upstream_key(self, request: Request) -> str | None:
        """The key to send upstream when a deployment has none configured (the caller's own, in passthrough)."""

    async def admit(self, request: Request, call: Call) -> Grant | None:
        """Allowlist, token caps and rate limits for an authenticated call; None when nothing is counted."""

    async def settle(self, grant: Grant, exchange: Exchange) -> None:
        """Replace the grant's reservation with the tokens `exchange.usage` says were used."""

    async def charge(self, exchange: Exchange) -> bool:
        """Count `exchange.usage` against its key's token caps (a realtime session's response, admitted with the
        session); False once a token cap of the key is used up."""

    async def visible_models(self, request: Request, models: list[str]) -> list[str] | None:
        """The models this caller may see (None: all, no credential needed)."""

    def finished(self, exchange: Exchange) -> None:
        """The request is over (listener): the keys mode writes its ledger row."""

    async def readiness(self) -> dict[str, str]:
        """The backing services this mode needs that do not answer now (`/readyz`): name -> what is wrong."""

    async def close(self) -> None: ...
