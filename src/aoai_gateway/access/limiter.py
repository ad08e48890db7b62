"""Atomic admission against several counters at once, in process memory or in Redis (shared by replicas).

    limiter = MemoryLimiter()                      # or RedisLimiter.from_url("redis://127.0.0.1:6379/0")
    refused = await limiter.admit([Check("key_1:m:29876543", limit=60, cost=1, ttl=120)])
    if refused is None: ...                        # every counter was incremented by its cost
    await limiter.adjust([("key_1:tm:29876543", -120, 120)])   # settle a reservation to the real usage

`admit` is all-or-nothing: either every check fits and every counter grows by its cost, or nothing changes and
the first check that did not fit comes back. That makes request counts exact: N concurrent requests against a
limit of L admit exactly L, within one process (the event loop runs the check-and-increment without awaiting)
and across processes with Redis (one Lua script per admission).

Counters that carry history (a key's day and its budget: `Check(..., seeded=True)`) must never start from zero
by accident: when one does not exist (a new day, a new process, a Redis restarted empty), `admit` first asks the
caller's `seed()` for its value (from the usage ledger) and creates it unless another admission or process just
did; then it admits. Redis failures are mapped here, and only here, to `LimitsUnavailable` (503).

    limiter = LocalFallbackLimiter(RedisLimiter.from_url(url))   # access.on_limiter_failure: local
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import LimitsUnavailable

log = logging.getLogger("aoai_gateway.limits")

# What a seeded counter should hold when it has to be created: counter -> value (from the ledger).
Seeder = Callable[[], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class Check:
    counter: str  # e.g. "key_ab12:rpm:29876543" (the window is in the name)
    limit: int
    cost: int
    ttl: int  # seconds the counter must outlive its window
    seeded: bool = False  # a day or budget counter: created from `seed()` when missing, never from zero


@dataclass(frozen=True, slots=True)
class Refusal:
    check: Check
    used: int  # the counter's value when it refused


class Limiter(Protocol):
    async def admit(self, checks: Sequence[Check], seed: Seeder | None = None) -> Refusal | None: ...

    async def adjust(self, changes: Sequence[tuple[str, int, int]]) -> None:
        """Add `delta` to each `(counter, delta, ttl)`; used to settle token reservations."""

    async def read(self, counters: Sequence[str]) -> list[int]: ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Counters in this process; expired ones are dropped as they are met."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._clock = clock

    def _get(self, counter: str, now: float) -> int:
        entry = self._counts.get(counter)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counts[counter]
            return 0
        return entry[0]

    async def admit(self, checks: Sequence[Check], seed: Seeder | None = None) -> Refusal | None:
        if seed is not None and any(c.seeded and self._missing(c.counter) for c in checks):
            values = await seed()
            now = self._clock()
            for check in checks:
                if check.seeded and self._missing(check.counter):  # unless a concurrent admission seeded it
                    self._counts[check.counter] = (values.get(check.counter, 0), now + check.ttl)
        now = self._clock()
        # No await between reading and writing: the event loop makes this atomic.
        for check in checks:
            used = self._get(check.counter, now)
            if used + check.cost > check.limit:
                return Refusal(check, used)
        for check in checks:
            used = self._get(check.counter, now)
            expires = self._counts.get(check.counter, (0, now + check.ttl))[1]
            self._counts[check.counter] = (used + check.cost, expires)
        return None

    def _missing(self, counter: str) -> bool:
        self._get(counter, self._clock())  # drops it when expired
        return counter not in self._counts

    async def adjust(self, changes: Sequence[tuple[str, int, int]]) -> None:
        now = self._clock()
        for counter, delta, ttl in changes:
            used = self._get(counter, now)
            expires = self._counts.get(counter, (0, now + ttl))[1]
            self._counts[counter] = (max(0, used + delta), expires)

    async def read(self, counters: Sequence[str]) -> list[int]:
        now = self._clock()
        return [self._get(counter, now) for counter in counters]

    async def close(self) -> None:
        self._counts.clear()


# KEYS: the counters; ARGV: limit1, cost1, ttl1, seeded1, limit2, ...
# Returns {0, 0} when admitted, {-1, i} when seeded counter i does not exist (nothing changed), else the 1-based
# index of the refusing check and its current value.
_ADMIT = """
for i, key in ipairs(KEYS) do
  if ARGV[4*i] == '1' and redis.call('EXISTS', key) == 0 then
    return {-1, i}
  end
end
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used + tonumber(ARGV[4*i-2]) > tonumber(ARGV[4*i-3]) then
    return {i, used}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[4*i-2])
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[4*i-1])
  end
end
return {0, 0}
"""

# KEYS: counters to create; ARGV: value1, ttl1, ...; a counter that exists (another process seeded it) is kept.
_SEED = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2*i-1], 'NX', 'EX', ARGV[2*i])
end
return 0
"""

# KEYS: counters; ARGV: delta1, ...; only counters that exist (a missing one is re-seeded from the ledger).
_ADD_EXISTING = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and redis.call('INCRBY', key, ARGV[i]) < 0 then
    redis.call('SET', key, 0, 'KEEPTTL')
  end
end
return 0
"""

# Failures that mean "Redis cannot answer now", as opposed to a bug in a script.
_REDIS_DOWN_REPLIES = ("LOADING", "MISCONF", "READONLY", "MASTERDOWN", "OOM")


@contextlib.contextmanager
def _redis_translated() -> Iterator[None]:
    """The one place Redis failures become `LimitsUnavailable`."""
    import redis.exceptions

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, TimeoutError) as exc:
        raise LimitsUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except redis.exceptions.ResponseError as exc:
        if not str(exc).startswith(_REDIS_DOWN_REPLIES):
            raise
        raise LimitsUnavailable(str(exc)) from exc


# KEYS: counters; ARGV: delta1, ttl1, ...; never below zero.
_ADJUST = """
for i, key in ipairs(KEYS) do
  local value = redis.call('INCRBY', key, ARGV[2*i-1])
  if value < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2*i]) end
end
return 0
"""


class RedisLimiter:
    """Counters in Redis, each admission one Lua script: several gateway replicas share exact limits."""

    def __init__(self, client: Any, prefix: str = "aoai-gateway:") -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._adjust = client.register_script(_ADJUST)
        self._seed = client.register_script(_SEED)
        self._add_existing = client.register_script(_ADD_EXISTING)

    @classmethod
    def from_url(cls, url: str) -> RedisLimiter:
        from ..extras import needs

        with needs("redis", "redis_url"):
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

        # A bounded pool that makes a burst wait for a connection instead of failing with "Too many connections".
        # One immediate retry (a pooled connection that a restarted Redis closed), then a fast 503: a request never
        # waits out redis-py's default back-off while Redis is down.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=10,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(redis.asyncio.Redis(connection_pool=pool))

    async def admit(self, checks: Sequence[Check], seed: Seeder | None = None) -> Refusal | None:
        if not checks:
            return None
        keys = [self._prefix + c.counter for c in checks]
        for attempt in range(3):
            args: list[int] = []
            for check in checks:
                args += [check.limit, check.cost, check.ttl, int(check.seeded and seed is not None and attempt < 2)]
            with _redis_translated():
                index, used = await self._admit(keys=keys, args=args)
            if int(index) != -1:
                return None if int(index) == 0 else Refusal(checks[int(index) - 1], int(used))
            assert seed is not None
            values = await seed()  # a day or budget counter is missing: a new day, or Redis lost it
            seeded = [c for c in checks if c.seeded]
            with _redis_translated():
                await self._seed(
                    keys=[self._prefix + c.counter for c in seeded],
                    args=[v for c in seeded for v in (values.get(c.counter, 0), c.ttl)],
                )
        raise AssertionError("unreachable: the third attempt does not ask for seeds")

    async def adjust(self, changes: Sequence[tuple[str, int, int]]) -> None:
        if changes:
            args = [value for _, delta, ttl in changes for value in (delta, ttl)]
            with _redis_translated():
                await self._adjust(keys=[self._prefix + counter for counter, _, _ in changes], args=args)

    async def add_existing(self, changes: Mapping[str, int]) -> None:
        """Add to counters that exist; a missing one stays missing (to be seeded from the ledger)."""
        if changes:
            with _redis_translated():
                await self._add_existing(keys=[self._prefix + c for c in changes], args=list(changes.values()))

    async def read(self, counters: Sequence[str]) -> list[int]:
        with _redis_translated():
            values = await self._client.mget([self._prefix + c for c in counters]) if counters else []
        return [int(v) if v is not None else 0 for v in values]

    async def ping(self) -> None:
        with _redis_translated():
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)


class LocalFallbackLimiter:
    """`access.on_limiter_failure: local`: Redis while it answers; while it does not, this process's own counters.

    During an outage each process enforces every cap on its own (seeded from the ledger like a fresh process), so
    N processes may admit up to N times a minute's limit. What was counted locally is added to the Redis counters
    that survived once Redis answers again; counters Redis lost are re-seeded from the ledger, which has the
    outage's requests. The local counters are then dropped.
    """

    def __init__(self, shared: RedisLimiter) -> None:
        self.shared = shared
        self._local = MemoryLimiter()
        self._owed: dict[str, int] = {}  # what was counted locally, to add to Redis when it is back
        self._down = False

    async def admit(self, checks: Sequence[Check], seed: Seeder | None = None) -> Refusal | None:
        try:
            refusal = await self.shared.admit(checks, seed)
        except LimitsUnavailable as exc:
            self._went_down(exc)
            refusal = await self._local.admit(checks, seed)
            if refusal is None:
                for check in checks:
                    self._owed[check.counter] = self._owed.get(check.counter, 0) + check.cost
            return refusal
        await self._came_back()
        return refusal

    async def adjust(self, changes: Sequence[tuple[str, int, int]]) -> None:
        try:
            await self.shared.adjust(changes)
        except LimitsUnavailable as exc:
            self._went_down(exc)
            await self._local.adjust(changes)
            for counter, delta, _ in changes:
                self._owed[counter] = self._owed.get(counter, 0) + delta
            return
        await self._came_back()

    async def read(self, counters: Sequence[str]) -> list[int]:
        try:
            return await self.shared.read(counters)
        except LimitsUnavailable:
            return await self._local.read(counters)

    async def ping(self) -> None:
        await self.shared.ping()

    def _went_down(self, exc: LimitsUnavailable) -> None:
        if not self._down:
            log.warning("Redis unavailable (%s): counting limits in this process until it answers", exc.detail)
        self._down = True

    async def _came_back(self) -> None:
        if not self._down:
            return
        self._down = False
        owed, self._owed, self._local = self._owed, {}, MemoryLimiter()
        try:
            await self.shared.add_existing(owed)
        except LimitsUnavailable as exc:
            self._went_down(exc)
            self._owed = owed
            return
        log.warning("Redis answers again: %d counters reconciled", len(owed))

    async def close(self) -> None:
        await self.shared.close()


def _memory(url: str | None) -> Limiter:
    return MemoryLimiter()


def _redis(url: str | None) -> Limiter:
    assert url is not None
    return RedisLimiter.from_url(url)


LIMITERS: dict[str, Callable[[str | None], Limiter]] = {"memory": _memory, "redis": _redis}


def create_limiter(redis_url: str | None, on_failure: str = "closed") -> Limiter:
    """The limiter the settings name; `on_failure` is `access.on_limiter_failure` (Redis only)."""
    limiter = LIMITERS["redis" if redis_url else "memory"](redis_url)
    if isinstance(limiter, RedisLimiter) and on_failure == "local":
        return LocalFallbackLimiter(limiter)
    return limiter


__all__ = [
    "LIMITERS",
    "Check",
    "Limiter",
    "LocalFallbackLimiter",
    "MemoryLimiter",
    "RedisLimiter",
    "Refusal",
    "Seeder",
    "create_limiter",
]
