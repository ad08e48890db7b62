"""What the router knows about one deployment right now: load, latency, throttling, breaker, counters.

health = DeploymentHealth(deployment, breaker=CircuitBreaker(5, 30))
health.unavailable_until(now)     # None when it may take a request now
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..config import Deployment
from .breaker import BreakerState, CircuitBreaker
from .window import MinuteWindow

_LATENCY_WEIGHT = 0.2  # EWMA: each new sample moves the estimate a fifth of the way


@dataclass(eq=False)
class DeploymentHealth:
    deployment: Deployment
    breaker: CircuitBreaker
    in_flight: int = 0
    latency_ms: float | None = None
    cooldown_until: float = 0.0
    requests: MinuteWindow = field(default_factory=MinuteWindow)
    tokens: MinuteWindow = field(default_factory=MinuteWindow)
    outcomes: dict[str, int] = field(default_factory=dict)
    # Smooth weighted round-robin (nginx's algorithm): deterministic and evenly interleaved.
    current_weight: float = 0.0

    @property
    def name(self) -> str:
        return self.deployment.deployment

    def unavailable_until(self, now: float) -> float | None:
        """None if a request may go now, else the earliest time it may (inf when only a probe result frees it)."""
        waits = []
        if self.cooldown_until > now:
            waits.append(self.cooldown_until)
        state = self.breaker.current(now)
        if state is BreakerState.OPEN:
            waits.append(self.breaker.reopens_at() or now)
        elif state is BreakerState.HALF_OPEN and self.breaker.probing:
            waits.append(now + self.breaker.open_seconds)
        rpm, tpm = self.deployment.rpm, self.deployment.tpm
        if rpm is not None and self.requests.total(now) >= rpm:
            waits.append(self.requests.frees_at(now))
        if tpm is not None and self.tokens.total(now) >= tpm:
            waits.append(self.tokens.frees_at(now))
        return max(waits) if waits else None

    def cool_down(self, seconds: float, now: float) -> None:
        self.cooldown_until = max(self.cooldown_until, now + seconds)

    def observe_latency(self, milliseconds: float) -> None:
        if self.latency_ms is None:
            self.latency_ms = milliseconds
        else:
            self.latency_ms += _LATENCY_WEIGHT * (milliseconds - self.latency_ms)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The state as `GET /admin/deployments` shows it (no keys)."""
        now = time.monotonic() if now is None else now
        wall = time.time() - now  # monotonic -> wall clock offset
        breaker = self.breaker.current(now)
        if breaker is not BreakerState.CLOSED:
            state = "open_circuit" if breaker is BreakerState.OPEN else "half_open"
        elif self.cooldown_until > now:
            state = "cooling_down"
        else:
            state = "healthy"
        until = self.unavailable_until(now)
        return {
            "model": self.deployment.model,
            "deployment": self.name,
            "provider": self.deployment.provider,
            "endpoint": self.deployment.endpoint,
            "priority": self.deployment.priority,
            "weight": self.deployment.weight,
            "state": state,
            "available_at": None if until is None or until == float("inf") else round(until + wall, 3),
            "in_flight": self.in_flight,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "requests_last_minute": self.requests.total(now),
            "tokens_last_minute": self.tokens.total(now),
            "consecutive_failures": self.breaker.failures,
            "outcomes": dict(self.outcomes),
        }
