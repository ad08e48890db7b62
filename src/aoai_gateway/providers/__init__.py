"""Upstream providers by name (`provider:` of a deployment)."""

from .azure import AzureProvider
from .base import Provider, Query
from .openai import OpenAIProvider

PROVIDERS: dict[str, Provider] = {
    "azure": AzureProvider(),
    "openai": OpenAIProvider(),
}

__all__ = ["PROVIDERS", "AzureProvider", "OpenAIProvider", "Provider", "Query"]
