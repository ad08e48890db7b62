"""Rows read on request hot paths (keys, events), kept in memory while they are fresh, and for a while longer
in case the database goes down.

    cache = ReadCache(db, fresh_seconds=5, outage_seconds=60)
    key = await cache.get(digest, lambda: store.read_key(digest))   # a read only when the copy is not fresh

Fresh means: on SQLite, no commit since the row was read (`PRAGMA data_version` changes whenever any connection,
another process or our own writer, commits), so a change is seen at the next request; on PostgreSQL, which cannot
tell, read less than `fresh_seconds` ago, so a change made by another process is seen within that time (the
process that made it forgets everything at once). Only rows that exist count as fresh there: a key created a
moment ago in another process is never refused because this one remembers it missing.

When a read fails with `DatabaseUnavailable`, a row that exists and was read less than `outage_seconds` ago is
served as it was; anything else (a key never seen, one seen too long ago) raises.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..errors import DatabaseUnavailable
from .database import Database

Value = TypeVar("Value")


class ReadCache(Generic[Value]):
    __slots__ = ("_clock", "_db", "_entries", "_fresh", "_limit", "_outage")

    def __init__(
        self,
        db: Database,
        fresh_seconds: float = 5.0,
        outage_seconds: float = 60.0,
        *,
        limit: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._fresh = fresh_seconds
        self._outage = outage_seconds
        self._limit = limit
        self._clock = clock
        self._entries: dict[str, tuple[Value, float, int | None]] = {}  # name -> (value, read at, generation)

    async def get(self, name: str, read: Callable[[], Awaitable[Value]]) -> Value:
        generation = self._db.generation()
        now = self._clock()
        entry = self._entries.get(name)
        if entry is not None:
            value, read_at, seen = entry
            if generation is not None and seen is not None:
                if seen == generation:
                    return value
            elif value is not None and now - read_at < self._fresh:
                return value
        try:
            found = await read()
        except DatabaseUnavailable:
            if entry is not None and entry[0] is not None and now - entry[1] < self._outage:
                return entry[0]
            raise
        if len(self._entries) >= self._limit:
            self._entries.clear()  # a flood of unknown names must not grow memory: start over
        self._entries[name] = (found, now, generation)
        return found

    def clear(self) -> None:
        """Forget everything: this process just wrote, and must not serve what it replaced."""
        self._entries.clear()
