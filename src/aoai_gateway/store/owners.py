"""Which gateway key created which file or batch (`files.key_access: own`): a key sees and uses only its own ids.

owners = ObjectOwners(db)
await owners.record("file-abc", key_id="key_1", kind="file")
await owners.owned_by("file-abc", "key_1")        # True
await owners.ids("key_1", "file")                 # {"file-abc"}
"""

from __future__ import annotations

import time

from .database import Database


class ObjectOwners:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, object_id: str, key_id: str, kind: str) -> None:
        await self.db.execute(
            "INSERT INTO owned_objects (id, key_id, kind, created_at) VALUES (?, ?, ?, ?)",
            [object_id, key_id, kind, time.time()],
        )

    async def owned_by(self, object_id: str, key_id: str) -> bool:
        rows = await self.db.fetch("SELECT key_id FROM owned_objects WHERE id = ?", [object_id])
        return bool(rows) and rows[0]["key_id"] == key_id

    async def ids(self, key_id: str, kind: str) -> set[str]:
        rows = await self.db.fetch("SELECT id FROM owned_objects WHERE key_id = ? AND kind = ?", [key_id, kind])
        return {row["id"] for row in rows}

    async def forget(self, object_id: str) -> None:
        await self.db.execute("DELETE FROM owned_objects WHERE id = ?", [object_id])


__all__ = ["ObjectOwners"]
