"""Rows kept in memory for as long as the database reports no commit since they were read.

    cache = CommitCache(db)
    key = await cache.get(digest, lambda: store.read_key(digest))   # a read only after another commit

SQLite's `PRAGMA data_version` changes whenever any connection (another process, our own writer) commits, so a
cached row is never staler than the last commit; a backend that cannot tell (`generation()` is None) is read
every time. Request hot paths use it for keys and events: a read costs a thread hop, a cache hit a dict lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .database import Database

Value = TypeVar("Value")


class CommitCache(Generic[Value]):
    __slots__ = ("_db", "_generation", "_limit", "_values")

    def __init__(self, db: Database, limit: int = 100_000) -> None:
        self._db = db
        self._limit = limit
        self._values: dict[str, Value] = {}
        self._generation: int | None = None

    async def get(self, name: str, read: Callable[[], Awaitable[Value]]) -> Value:
        generation = self._db.generation()
        if generation is not None:
            if generation != self._generation:
                self._values.clear()
                self._generation = generation
            elif name in self._values:
                return self._values[name]
        found = await read()
        if generation is not None and len(self._values) < self._limit:
            self._values[name] = found
        return found

    def clear(self) -> None:
        """Forget everything: this process just wrote, and must not wait for the next generation check."""
        self._values.clear()
