"""A circuit breaker per deployment: closed -> open after N consecutive failures -> half-open -> one probe.

breaker = CircuitBreaker(failure_threshold=5, open_seconds=30)
if breaker.allows(now):          # in half-open, True exactly once until the probe reports back
    ...
    breaker.record(success=True, now=now)
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("failure_threshold", "failures", "open_seconds", "opened_at", "probing", "state")

    def __init__(self, failure_threshold: int, open_seconds: float) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def current(self, now: float) -> BreakerState:
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.open_seconds:
            self.state = BreakerState.HALF_OPEN
            self.probing = False
        return self.state

    def allows(self, now: float) -> bool:
        """Whether a request may go now; in half-open this hands out the single probe."""
        state = self.current(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def reopens_at(self) -> float | None:
        return self.opened_at + self.open_seconds if self.state is BreakerState.OPEN else None

    def record(self, *, success: bool, now: float) -> None:
        if success:
            self.failures = 0
            self.state = BreakerState.CLOSED
            self.probing = False
            return
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = BreakerState.OPEN
            self.opened_at = now
            self.probing = False
