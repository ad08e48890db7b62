"""Atomic admission against several counters at once, in process memory or in Redis (shared by replicas).

    limiter = MemoryLimiter()                      # or RedisLimiter.from_url("redis://127.0.0.1:6379/0")
    refused = await limiter.admit([Check("key_1:m:29876543", limit=60, cost=1, ttl=120)])
    if refused is None: ...                        # every counter was incremented by its cost
    await limiter.adjust([("key_1:tm:29876543", -120, 120)])   # settle a reservation to the real usage

`admit` is all-or-nothing: either every check fits and every counter grows by its cost, or nothing changes and
the first check that did not fit comes back. That makes request counts exact: N concurrent requests against a
limit of L admit exactly L, within one process (the event loop runs the check-and-increment without awaiting)
and across processes with Redis (one Lua script per admission).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Check:
    counter: str  # e.g. "key_ab12:rpm:29876543" (the window is in the name)
    limit: int
    cost: int
    ttl: int  # seconds the counter must outlive its window


@dataclass(frozen=True, slots=True)
class Refusal:
    check: Check
    used: int  # the counter's value when it refused


class Limiter(Protocol):
    async def admit(self, checks: Sequence[Check]) -> Refusal | None: ...

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

    async def admit(self, checks: Sequence[Check]) -> Refusal | None:
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


# KEYS: the counters; ARGV: limit1, cost1, ttl1, limit2, cost2, ttl2, ...
# Returns 0 when admitted, else the 1-based index of the refusing check and its current value.
_ADMIT = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used + tonumber(ARGV[3*i-1]) > tonumber(ARGV[3*i-2]) then
    return {i, used}
  end
end
for i, key in ipairs(KEYS) do
  local value = redis.call('INCRBY', key, ARGV[3*i-1])
  if value == tonumber(ARGV[3*i-1]) then
    redis.call('EXPIRE', key, ARGV[3*i])
  end
end
return {0, 0}
"""

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

    @classmethod
    def from_url(cls, url: str) -> RedisLimiter:
        from ..extras import needs

        with needs("redis", "redis_url"):
            import redis.asyncio

        # A bounded pool that makes a burst wait for a connection instead of failing with "Too many connections".
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
        return cls(redis.asyncio.Redis(connection_pool=pool))

    async def admit(self, checks: Sequence[Check]) -> Refusal | None:
        if not checks:
            return None
        args: list[int] = []
        for check in checks:
            args += [check.limit, check.cost, check.ttl]
        index, used = await self._admit(keys=[self._prefix + c.counter for c in checks], args=args)
        return None if int(index) == 0 else Refusal(checks[int(index) - 1], int(used))

    async def adjust(self, changes: Sequence[tuple[str, int, int]]) -> None:
        if changes:
            args = [value for _, delta, ttl in changes for value in (delta, ttl)]
            await self._adjust(keys=[self._prefix + counter for counter, _, _ in changes], args=args)

    async def read(self, counters: Sequence[str]) -> list[int]:
        values = await self._client.mget([self._prefix + c for c in counters]) if counters else []
        return [int(v) if v is not None else 0 for v in values]

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)


def _memory(url: str | None) -> Limiter:
    return MemoryLimiter()


def _redis(url: str | None) -> Limiter:
    assert url is not None
    return RedisLimiter.from_url(url)


LIMITERS: dict[str, Callable[[str | None], Limiter]] = {"memory": _memory, "redis": _redis}


def create_limiter(redis_url: str | None) -> Limiter:
    return LIMITERS["redis" if redis_url else "memory"](redis_url)


__all__ = ["LIMITERS", "Check", "Limiter", "MemoryLimiter", "RedisLimiter", "Refusal", "create_limiter"]
