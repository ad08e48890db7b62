"""Managed access: gateway keys, caps and exact limits (in memory or Redis)."""

from .control import AccessControl, Grant
from .limiter import LIMITERS, Check, Limiter, MemoryLimiter, RedisLimiter, Refusal, create_limiter

__all__ = [
    "LIMITERS",
    "AccessControl",
    "Check",
    "Grant",
    "Limiter",
    "MemoryLimiter",
    "RedisLimiter",
    "Refusal",
    "create_limiter",
]
