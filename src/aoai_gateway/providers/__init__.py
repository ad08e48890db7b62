"""Upstream providers by name (`provider:` of a deployment)."""

from .azure import AzureProvider
from .base import Provider, Query
from .local import LocalProvider
from .openai import OpenAIProvider

PROVIDERS: dict[str, Provider] = {
    "azure": AzureProvider(),
    "openai": OpenAIProvider(),
    "local": LocalProvider(),
}

__all__ = ["PROVIDERS", "AzureProvider", "LocalProvider", "OpenAIProvider", "Provider", "Query"]
