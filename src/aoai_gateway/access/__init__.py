"""Access modes (`auth:`), from a registry: passthrough (the caller's key goes upstream) or keys (gateway keys,
caps and exact limits in memory or Redis, the usage ledger)."""

from collections.abc import Awaitable, Callable

from ..config import Settings
from .base import Access, Grant
from .control import AccessControl
from .limiter import LIMITERS, Check, Limiter, MemoryLimiter, RedisLimiter, Refusal, create_limiter
from .passthrough import PassthroughAccess, open_passthrough
from .runtime import ManagedAccess, open_managed_access

ACCESS_MODES: dict[str, Callable[[Settings], Awaitable[Access]]] = {
    "passthrough": open_passthrough,
    "keys": open_managed_access,
}

__all__ = [
    "ACCESS_MODES",
    "LIMITERS",
    "Access",
    "AccessControl",
    "Check",
    "Grant",
    "Limiter",
    "ManagedAccess",
    "MemoryLimiter",
    "PassthroughAccess",
    "RedisLimiter",
    "Refusal",
    "create_limiter",
]
