"""Balancing a model's deployments: tiers, strategies, cool-downs, circuit breakers, retry rules."""

from .breaker import BreakerState, CircuitBreaker
from .health import DeploymentHealth
from .retry import RETRYABLE_STATUSES, retry_after_seconds, retryable_status
from .router import DeploymentRouter
from .strategies import STRATEGIES

__all__ = [
    "RETRYABLE_STATUSES",
    "STRATEGIES",
    "BreakerState",
    "CircuitBreaker",
    "DeploymentHealth",
    "DeploymentRouter",
    "retry_after_seconds",
    "retryable_status",
]
