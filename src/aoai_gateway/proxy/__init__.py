"""The proxy service: deployment table, body handling, header rules, forwarding and relaying."""

from .body import Call, form_call, json_call, parse_json
from .deployments import DeploymentTable
from .service import AbortResponse, ProxyService

__all__ = ["AbortResponse", "Call", "DeploymentTable", "ProxyService", "form_call", "json_call", "parse_json"]
