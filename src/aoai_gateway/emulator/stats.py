"""Per-deployment request counts (GET /_emulator/stats) and the minute window behind x-ratelimit-* headers.

    stats = RequestStats()
    stats.record_request("gpt-4o-deploy", "chat/completions")
    stats.record_outcome("gpt-4o-deploy", status=200, tokens=42)
    stats.snapshot()["deployments"]["gpt-4o-deploy"]["requests"]  # -> 1

A request is counted once it names a deployment the emulator serves, whether it then succeeds, fails
validation or suffers an injected fault, so tests can assert that a deployment was never called at all.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestStats"]


@dataclass(slots=True)
class _DeploymentCounts:
    requests: int = 0
    tokens: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    # Fixed one-minute window, enough to make the remaining-* headers move the way Azure's do.
    window: int = -1
    window_requests: int = 0
    window_tokens: int = 0


class RequestStats:
    """Counters by deployment; `clock` is injectable so tests can move the rate-limit window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deployments: dict[str, _DeploymentCounts] = {}

    def _counts(self, deployment: str) -> _DeploymentCounts:
        counts = self._deployments.get(deployment)
        if counts is None:
            counts = self._deployments[deployment] = _DeploymentCounts()
        window = int(self._clock() // 60)
        if counts.window != window:
            counts.window, counts.window_requests, counts.window_tokens = window, 0, 0
        return counts

    def record_request(self, deployment: str, operation: str) -> None:
        counts = self._counts(deployment)
        counts.requests += 1
        counts.window_requests += 1
        counts.operations[operation] += 1

    def record_outcome(self, deployment: str, *, status: int | str, tokens: int = 0) -> None:
        """Count how the request ended: an HTTP status, or "reset" / "timeout" for injected faults."""
        counts = self._counts(deployment)
        counts.statuses[str(status)] += 1
        counts.tokens += tokens
        counts.window_tokens += tokens

    def remaining(self, deployment: str, *, requests_limit: int, tokens_limit: int) -> tuple[int, int]:
        """Requests and tokens left in the current minute, never below zero."""
        counts = self._counts(deployment)
        return max(0, requests_limit - counts.window_requests), max(0, tokens_limit - counts.window_tokens)

    def reset(self) -> None:
        self._deployments.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_requests": sum(counts.requests for counts in self._deployments.values()),
            "deployments": {
                name: {
                    "requests": counts.requests,
                    "tokens": counts.tokens,
                    "operations": dict(counts.operations),
                    "statuses": dict(sorted(counts.statuses.items())),
                }
                for name, counts in sorted(self._deployments.items())
            },
        }
