"""What `/readyz` says about the backing services the settings need: which ones answer, checked at most once a
second, never on the event loop's time.

    readiness = Readiness({"database": ping_database, "redis": limiter.ping})
    await readiness.problems()        # {} or {"redis": "LimitsUnavailable: Connection refused"}

Probes run concurrently, each within `timeout` seconds; callers within `ttl` of the last check share its answer,
and callers during a check wait for that same check (a burst of probes is one round trip per service).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

Probe = Callable[[], Awaitable[object]]


class Readiness:
    def __init__(self, probes: Mapping[str, Probe], *, ttl: float = 1.0, timeout: float = 1.0) -> None:
        self._probes = dict(probes)
        self._ttl = ttl
        self._timeout = timeout
        self._checked_at = float("-inf")
        self._problems: dict[str, str] = {}
        self._running: asyncio.Future[dict[str, str]] | None = None

    async def problems(self) -> dict[str, str]:
        """Service name -> what is wrong with it; empty when every one answered."""
        if not self._probes or time.monotonic() - self._checked_at < self._ttl:
            return self._problems
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        # shield: a probe caller that disconnects must not cancel the check others wait for.
        return await asyncio.shield(self._running)

    async def _check(self) -> dict[str, str]:
        names = list(self._probes)
        results = await asyncio.gather(*(self._probe(self._probes[name]) for name in names))
        self._problems = {name: problem for name, problem in zip(names, results, strict=True) if problem}
        self._checked_at = time.monotonic()
        return self._problems

    async def _probe(self, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:g} s"
        except Exception as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'detail', exc)}"
        return None
