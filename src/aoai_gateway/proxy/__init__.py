"""The proxy service: body handling, header rules, usage, forwarding with failover, relaying."""

from .body import Call, form_call, json_call, parse_json
from .service import AbortResponse, ProxyService

__all__ = ["AbortResponse", "Call", "ProxyService", "form_call", "json_call", "parse_json"]
