"""Everything `auth: keys` needs at run time, opened together at start-up and closed together at shutdown.

managed = await open_managed_access(settings)   # database (migrated), keys, limiter, access control, ledger
...
await managed.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..store import Database, KeyStore, UsageLedger, connect_database, migrate
from ..store.events import EventStore
from .control import AccessControl
from .limiter import Limiter, create_limiter


@dataclass
class ManagedAccess:
    db: Database
    keys: KeyStore
    events: EventStore
    limiter: Limiter
    control: AccessControl
    ledger: UsageLedger

    async def close(self) -> None:
        await self.ledger.close()
        await self.limiter.close()
        await self.db.close()


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
