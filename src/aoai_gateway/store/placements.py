"""Where each stored response lives: the Azure resource (endpoint) and deployment that created it, and its key.

    placements = ResponsePlacements(db, ttl_seconds=30 * 86400)
    await placements.remember("resp_abc", endpoint, "chat-east", key_id="key_1")
    found = await placements.find("resp_abc")     # Placement(...) or None once expired or never seen

A response is stored by the resource that generated it, so a follow-up (`previous_response_id`, retrieve,
delete, input items, cancel) can be answered only there. Rows live in the gateway's database, shared by every
replica that shares the database, and expire with the upstream's retention (Azure keeps responses 30 days).
Writes happen once per created response, reads once per request naming an id: chat requests never touch it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .database import Database

_PRUNE_EVERY = 512  # writes between sweeps of expired rows


@dataclass(frozen=True, slots=True)
class Placement:
    endpoint: str
    deployment: str
    key_id: str | None  # the gateway key that created it (auth: keys); None in passthrough


class ResponsePlacements:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self._writes = 0

    async def find(self, response_id: str) -> Placement | None:
        rows = await self.db.fetch(
            "SELECT endpoint, deployment, key_id FROM response_placements WHERE id = ? AND expires_at > ?",
            [response_id, time.time()],
        )
        if not rows:
            return None
        row = rows[0]
        return Placement(row["endpoint"], row["deployment"], row["key_id"])

    async def remember(self, response_id: str, endpoint: str, deployment: str, key_id: str | None) -> None:
        now = time.time()
        await self.db.execute(
            "INSERT INTO response_placements (id, endpoint, deployment, key_id, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, deployment = excluded.deployment, "
            "key_id = excluded.key_id, expires_at = excluded.expires_at",
            [response_id, endpoint, deployment, key_id, now + self.ttl_seconds],
        )
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            await self.db.execute("DELETE FROM response_placements WHERE expires_at <= ?", [now])
