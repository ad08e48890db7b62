"""The proxy service: header rules, usage, forwarding with failover, relaying."""

from .headers import RequestHeaderRules
from .service import AbortResponse, ProxyService

__all__ = ["AbortResponse", "ProxyService", "RequestHeaderRules"]
