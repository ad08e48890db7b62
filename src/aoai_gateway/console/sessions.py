"""Admin sign-in: the master key once, then a server-side session named by an HttpOnly cookie.

    sessions = StoredSessions(db, ttl_seconds=8 * 3600)     # or AdminSessions(ttl_seconds=...): in memory
    session_id = await sessions.open()       # the cookie's value; only its SHA-256 is kept
    await sessions.valid(session_id)         # False once expired or closed
    await sessions.close(session_id)         # sign-out deletes it

    throttle = SignInThrottle(attempts=10, window=900)
    throttle.admit("203.0.113.7")            # RateLimited (429, Retry-After) past 10 tries in the quarter-hour
    throttle.refund("203.0.113.7")           # a right key does not count

With a database (`auth: keys`), sessions are rows of `console_sessions` (`StoredSessions`): every worker of
`server.workers` > 1 knows them, and a restart keeps them. Without one they live in this process's memory
(`AdminSessions`): a restart signs every admin out, and a session opened in one worker is unknown to the others.
Both are bounded: expired sessions are dropped as new ones open (and, in memory, past `max_sessions` the oldest).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from ..access.registration import address_bucket
from ..errors import RateLimited
from ..store.database import Database

SESSION_COOKIE = "aoai_console_session"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class Sessions(Protocol):
    ttl: float

    async def open(self) -> str: ...

    async def valid(self, session_id: str | None) -> bool: ...

    async def close(self, session_id: str | None) -> None: ...


class AdminSessions:
    """In this process's memory: for gateways without a database."""

    def __init__(
        self, ttl_seconds: float, max_sessions: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()  # digest -> expiry, oldest first

    async def open(self) -> str:
        now = self._clock()
        while self._expiry and (len(self._expiry) >= self.max_sessions or next(iter(self._expiry.values())) <= now):
            self._expiry.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        self._expiry[_digest(session_id)] = now + self.ttl
        return session_id

    async def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        digest = _digest(session_id)
        expiry = self._expiry.get(digest)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[digest]
            return False
        return True

    async def close(self, session_id: str | None) -> None:
        if session_id:
            self._expiry.pop(_digest(session_id), None)


class StoredSessions:
    """Rows of `console_sessions` (the SHA-256 of the id, its expiry): shared by workers, kept over restarts.

    Expiry is wall-clock time (`time.time`), which every process and the next start agree on."""

    def __init__(self, db: Database, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._clock = clock

    async def open(self) -> str:
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        # Expired sessions go as new ones open (index `console_sessions_expiry`): the table stays small.
        await self.db.execute("DELETE FROM console_sessions WHERE expires_at <= ?", [now])
        await self.db.execute(
            "INSERT INTO console_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)",
            [_digest(session_id), now, now + self.ttl],
        )
        return session_id

    async def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        rows = await self.db.fetch("SELECT expires_at FROM console_sessions WHERE id_hash = ?", [_digest(session_id)])
        return bool(rows) and float(rows[0]["expires_at"]) > self._clock()

    async def close(self, session_id: str | None) -> None:
        if session_id:
            await self.db.execute("DELETE FROM console_sessions WHERE id_hash = ?", [_digest(session_id)])


class SignInThrottle:
    """Fixed windows per client address (an IPv6 /64 counts as one): every attempt counts, a success is refunded."""

    def __init__(self, attempts: int, window: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    def admit(self, address: str | None) -> None:
        now = self._clock()
        slot = int(now // self.window)
        first = next(iter(self._counts), None)
        if first is not None and first[1] != slot:  # a new window: the old one's counts are done with
            self._counts = {k: v for k, v in self._counts.items() if k[1] == slot}
        if len(self._counts) >= 100_000:  # bounded memory under a spray of addresses
            self._counts.clear()
        key = (address_bucket(address), slot)
        used = self._counts.get(key, 0)
        if used >= self.attempts:
            retry = (slot + 1) * self.window - now
            raise RateLimited(
                f"Too many sign-in attempts from this address ({self.attempts} per {self.window / 60:g} minutes); "
                f"retry after {max(1, round(retry))} seconds.",
                "requests",
                retry,
                {},
            )
        self._counts[key] = used + 1

    def refund(self, address: str | None) -> None:
        key = (address_bucket(address), int(self._clock() // self.window))
        if self._counts.get(key, 0) > 0:
            self._counts[key] -= 1
