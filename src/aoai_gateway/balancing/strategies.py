"""Selection strategies, by name (`routing.strategy`): the order in which a tier's deployments are tried.

    order = STRATEGIES["least_inflight"](available)

Each takes the deployments of one priority tier that may take a request now and returns them best first;
the router tries the next one after a failure.
"""

from __future__ import annotations

from collections.abc import Callable

from .health import DeploymentHealth

Strategy = Callable[[list[DeploymentHealth]], list[DeploymentHealth]]


def weighted_round_robin(candidates: list[DeploymentHealth]) -> list[DeploymentHealth]:
    """Smooth weighted round-robin (as nginx): weights 5:1:1 give a a b a c a a, never bursts."""
    if len(candidates) == 1:
        return candidates
    total = 0.0
    for health in candidates:
        health.current_weight += health.deployment.weight
        total += health.deployment.weight
    chosen = max(candidates, key=lambda h: h.current_weight)
    chosen.current_weight -= total
    return [chosen, *sorted((h for h in candidates if h is not chosen), key=lambda h: -h.current_weight)]


def least_inflight(candidates: list[DeploymentHealth]) -> list[DeploymentHealth]:
    """Fewest requests in flight relative to weight; ties keep configuration order."""
    return sorted(candidates, key=lambda h: h.in_flight / h.deployment.weight)


def lowest_latency(candidates: list[DeploymentHealth]) -> list[DeploymentHealth]:
    """Lowest recent latency (EWMA of time to response headers); unmeasured deployments first, to measure."""
    return sorted(candidates, key=lambda h: -1.0 if h.latency_ms is None else h.latency_ms)


STRATEGIES: dict[str, Strategy] = {
    "weighted_round_robin": weighted_round_robin,
    "least_inflight": least_inflight,
    "lowest_latency": lowest_latency,
}
