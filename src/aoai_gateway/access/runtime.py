"""`auth: keys`: everything managed access needs at run time, opened together and closed together.

managed = await open_managed_access(settings)   # database (migrated), keys, events, limiter, control, ledger
await managed.authenticate(request)             # the gateway key, from the headers
...
await managed.close()

It is the keys-mode `Access`: admission and settlement go to `AccessControl`, and each finished request of an
authenticated caller becomes one row of the usage ledger. Requests that never presented a valid key are
counted in the metrics, not written to the ledger (anonymous traffic must not fill the database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..api_call import Call
from ..config import Settings
from ..exchange import Exchange
from ..http.request import Request
from ..store import Database, KeyStore, UsageLedger, UsageRow, connect_database, migrate
from ..store.events import EventStore
from .base import Grant
from .control import AccessControl
from .limiter import Limiter, create_limiter

# Routes whose calls are not usage: probes, scrapes, and requests that matched no route.
_UNLEDGERED = frozenset({"/healthz", "/readyz", "/metrics", "-"})


@dataclass
class ManagedAccess:
    db: Database
    keys: KeyStore
    events: EventStore
    limiter: Limiter
    control: AccessControl
    ledger: UsageLedger

    async def authenticate(self, request: Request) -> None:
        await self.control.authenticate(request)

    def upstream_key(self, request: Request) -> str | None:
        return None  # the caller's key is a gateway key: it never goes upstream

    async def admit(self, request: Request, call: Call) -> Grant | None:
        return await self.control.admit(request, call)

    async def settle(self, grant: Grant, exchange: Exchange) -> None:
        await self.control.settle(grant, exchange)

    async def charge(self, exchange: Exchange) -> bool:
        return await self.control.charge(exchange)

    async def visible_models(self, request: Request, models: list[str]) -> list[str] | None:
        key = await self.control.authenticate(request)
        return self.control.allowed_models(key, models)

    def finished(self, exchange: Exchange) -> None:
        if exchange.key_id is None or exchange.route in _UNLEDGERED:
            return
        self.ledger.record(_usage_row(exchange))

    async def close(self) -> None:
        await self.ledger.close()
        await self.limiter.close()
        await self.db.close()


def _usage_row(exchange: Exchange) -> UsageRow:
    prompt, completion = exchange.usage or (0, 0)
    return UsageRow(
        at=time.time(),
        key_id=exchange.key_id,
        event_id=exchange.event_id,
        model=exchange.model,
        deployment=exchange.deployment,
        route=exchange.route,
        status=exchange.status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        audio_seconds=exchange.audio_seconds,
        latency_ms=round(exchange.duration * 1000, 3),
    )


async def open_store(settings: Settings) -> Database:
    """The migrated database the server and the CLI share."""
    db = await connect_database(settings.database_url)
    await migrate(db)
    return db


async def open_managed_access(settings: Settings) -> ManagedAccess:
    db = await open_store(settings)
    keys, events = KeyStore(db), EventStore(db)
    limiter = create_limiter(settings.redis_url)
    ledger = UsageLedger(db, settings.access.usage_flush_seconds)
    ledger.start()
    return ManagedAccess(
        db,
        keys,
        events,
        limiter,
        AccessControl(settings.access, keys, events, limiter, seed=settings.redis_url is None),
        ledger,
    )
