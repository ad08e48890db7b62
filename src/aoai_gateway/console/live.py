"""An event's live summary shared by everyone watching it: one read of the ledger per event every few seconds.

    shared = SharedSummaries(seconds=5)
    summary = await shared.get((event_id, 15, 10), lambda: organiser.live(event_id, minutes=15, top=10))

Every open live page polls its summary (every `LIVE_REFRESH_SECONDS`), and each summary reads the event's last
minutes of raw ledger rows: tens of thousands at a busy event, the costliest read of the console. Viewers within
`seconds` of each other share one read (and viewers asking at once, the one in flight). The summary's `until`
says when its figures were taken, and the page shows it. A failed read (an unknown event, a database down) is not
kept. Not for the usage reports: those are exact at the moment they are asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

Summary = dict[str, Any]


class SharedSummaries:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, size: int = 256) -> None:
        self.seconds = seconds
        self._clock = clock
        self._size = size
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Summary]]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Summary]]) -> Summary:
        """The summary read for `key` less than `seconds` ago, or a new one from `read()`."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            if len(self._entries) >= self._size:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            entry = (now + self.seconds, asyncio.ensure_future(read()))
            self._entries[key] = entry
        try:
            # Shielded: a viewer who goes away does not cancel the read the others wait for.
            return await asyncio.shield(entry[1])
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise
