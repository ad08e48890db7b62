"""Upstream providers by name (`provider:` of a deployment), and the clients that reach them.

clients = await open_clients(settings, http, stack)     # provider name -> client, closed by `stack`
"""

from contextlib import AsyncExitStack

from ..config import Deployment, Settings
from ..upstream import UpstreamClient
from .azure import AzureProvider
from .base import HttpProvider, Provider, Query
from .local import LocalProvider
from .openai import OpenAIProvider
from .pipeline import PipelineProvider

PROVIDERS: dict[str, Provider] = {
    "azure": AzureProvider(),
    "openai": OpenAIProvider(),
    "local": LocalProvider(),
    "pipeline": PipelineProvider(),
}


async def open_clients(settings: Settings, http: UpstreamClient, stack: AsyncExitStack) -> dict[str, UpstreamClient]:
    """One client per provider in use; clients of their own (local models) are closed by `stack`."""
    used: dict[str, list[Deployment]] = {}
    for deployment in settings.deployments:
        used.setdefault(deployment.provider, []).append(deployment)
    clients: dict[str, UpstreamClient] = {}
    for name, deployments in used.items():
        client = await PROVIDERS[name].open_client(settings, deployments, http)
        if client is not http:
            stack.push_async_callback(client.aclose)
        clients[name] = client
    return clients


def upload_limits(settings: Settings) -> dict[str, int]:
    """Provider in use -> the largest multipart body its deployments take."""
    return {d.provider: PROVIDERS[d.provider].upload_limit(settings) for d in settings.deployments}


__all__ = [
    "PROVIDERS",
    "AzureProvider",
    "HttpProvider",
    "LocalProvider",
    "OpenAIProvider",
    "PipelineProvider",
    "Provider",
    "Query",
    "open_clients",
    "upload_limits",
]
