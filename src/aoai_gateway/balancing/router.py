"""The deployment router: which deployment of a model takes the next attempt.

    router = DeploymentRouter(settings.deployments, settings.routing)
    group = router.group("gpt-4o")            # by model name, else by deployment name
    health = router.next(group, tried=set())  # None when nothing can take a request now

Priority tiers come first (0 is the highest): a lower tier is used only when no deployment of a higher one is
available (cooling down after a 429, circuit open, over its rpm/tpm, or already tried for this request). Within
a tier the configured strategy orders the candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..config import Deployment, RoutingSettings
from ..errors import ModelNotFound
from .breaker import CircuitBreaker
from .health import DeploymentHealth
from .strategies import STRATEGIES


class DeploymentRouter:
    def __init__(
        self,
        deployments: Iterable[Deployment],
        settings: RoutingSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._strategy = STRATEGIES[settings.strategy]
        self._groups: dict[str, list[DeploymentHealth]] = {}
        self._by_deployment: dict[str, DeploymentHealth] = {}
        breaker = settings.breaker
        for deployment in deployments:
            health = DeploymentHealth(deployment, CircuitBreaker(breaker.failure_threshold, breaker.open_seconds))
            self._groups.setdefault(deployment.model, []).append(health)
            self._by_deployment.setdefault(deployment.deployment, health)
        self._tiers = {model: sorted({h.deployment.priority for h in group}) for model, group in self._groups.items()}

    @property
    def models(self) -> list[str]:
        return list(self._groups)

    def group(self, name: str) -> list[DeploymentHealth]:
        """A model's deployments; an Azure deployment name is accepted too (Azure-native clients)."""
        group = self._groups.get(name)
        if group is not None:
            return group
        health = self._by_deployment.get(name)
        if health is None:
            raise ModelNotFound(name, available=self._groups)
        return [health]

    def next(self, group: list[DeploymentHealth], tried: set[DeploymentHealth]) -> DeploymentHealth | None:
        """The deployment for the next attempt; a half-open breaker hands out its single probe here."""
        now = self.clock()
        if len(group) == 1:  # the common case, without sorting
            only = group[0]
            if only in tried or only.unavailable_until(now) is not None:
                return None
            return only if only.breaker.allows(now) else None
        for tier in self._tiers[group[0].deployment.model]:
            available = [
                h
                for h in group
                if h.deployment.priority == tier and h not in tried and h.unavailable_until(now) is None
            ]
            for health in self._strategy(available) if available else ():
                if health.breaker.allows(now):
                    return health
        return None

    def has_next(self, group: list[DeploymentHealth], tried: set[DeploymentHealth]) -> bool:
        """Whether another attempt could go now (does not take a half-open probe)."""
        now = self.clock()
        return any(h not in tried and h.unavailable_until(now) is None for h in group)

    def retry_after(self, group: list[DeploymentHealth]) -> float:
        """Seconds until the soonest deployment of the group can take a request (at least 1)."""
        now = self.clock()
        times = [h.unavailable_until(now) for h in group]
        soonest = min((t for t in times if t is not None), default=now)
        if soonest == float("inf"):
            soonest = now + self.settings.breaker.open_seconds
        return max(1.0, soonest - now)

    def deployments(self) -> list[DeploymentHealth]:
        return [health for group in self._groups.values() for health in group]

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [health.snapshot(now) for group in self._groups.values() for health in group]
