"""`auth: keys`: everything managed access needs at run time, opened together and closed together.

managed = await open_managed_access(settings)   # database (migrated), keys, events, limiter, control, ledger
await managed.authenticate(request)             # the gateway key, from the headers
...
await managed.close()

It is the keys-mode `Access`: admission and settlement go to `AccessControl`, and each finished request of an
authenticated caller becomes one row of the usage ledger. Requests that never presented a valid key are
counted in the metrics, not written to the ledger (anonymous traffic must not fill the database).

When the database is down the ledger buffers rows (up to `access.usage_buffer_rows`); past that bound, API calls
are refused with a 503 `usage_ledger_full` before anything goes upstream, so no call that used a model goes
unrecorded, and the rows of those refusals (which used nothing) are counted in the log instead of kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..api_call import Call
from ..config import Settings
from ..errors import DatabaseUnavailable
from ..exchange import Exchange
from ..http.request import Request
from ..store import Database, KeyStore, UsageLedger, UsageRow, connect_database, migrate
from ..store.events import EventStore
from .base import Grant
from .control import AccessControl
from .limiter import Limiter, LocalFallbackLimiter, RedisLimiter, create_limiter
from .readiness import Readiness

log = logging.getLogger("aoai_gateway.access")

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
    ready: Readiness
    # Services whose failure /readyz reports without answering 503 (Redis with `on_limiter_failure: local`).
    degradable: frozenset[str] = frozenset()
    dropped: int = field(default=0)  # refusals past a full ledger buffer, not written

    async def authenticate(self, request: Request) -> None:
        await self.control.authenticate(request)

    def upstream_key(self, request: Request) -> str | None:
        return None  # the caller's key is a gateway key: it never goes upstream

    async def admit(self, request: Request, call: Call) -> Grant | None:
        if self.ledger.full:
            raise DatabaseUnavailable(
                f"{self.ledger.backlog} usage rows wait for the database",
                code="usage_ledger_full",
                message="The gateway cannot record usage now (its database is unavailable and its buffer is full); "
                "retry after a few seconds.",
            )
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
        if self.ledger.full and exchange.deployment is None:  # refused before any upstream: nothing was used
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8, ...: a trace without flooding the log
                log.warning("usage ledger buffer full: %d refused requests not recorded", self.dropped)
            return
        self.ledger.record(_usage_row(exchange))

    async def readiness(self) -> dict[str, str]:
        problems = await self.ready.problems()
        return {name: problem for name, problem in problems.items() if name not in self.degradable}

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
    access = settings.access
    db = await open_store(settings)
    keys = KeyStore(db, access.key_cache_seconds, access.key_outage_seconds)
    events = EventStore(db, access.key_cache_seconds, access.key_outage_seconds)
    limiter = create_limiter(settings.redis_url, access.on_limiter_failure)
    ledger = UsageLedger(db, access.usage_flush_seconds, access.usage_buffer_rows)
    ledger.start()

    async def database() -> None:
        await db.fetch("SELECT 1")

    probes = {"database": database}
    if isinstance(limiter, RedisLimiter | LocalFallbackLimiter):
        probes["redis"] = limiter.ping
    degradable = frozenset({"redis"}) if isinstance(limiter, LocalFallbackLimiter) else frozenset()
    control = AccessControl(access, keys, events, limiter)
    return ManagedAccess(db, keys, events, limiter, control, ledger, Readiness(probes), degradable)
