"""Model Context Protocol servers as tool sources, through the official `mcp` SDK (the mcp extra).

    tools = await open_mcp_tools(settings.assistant.mcp_servers, stack, os.environ)   # connected once
    await tools[0].run({"city": "Paris"})          # tools/call on its server; text or structured content back

Each configured server is connected once when the gateway starts (a command over stdio, or a streamable HTTP URL
with headers from environment variables) and closed with it. Its tools are listed then, and appear to the model as
`SERVER__TOOL` with their own input schemas, which the registry validates before a call. A result the server
marks `is_error` is a `ToolFailure` with its text, as is a protocol error; the registry's timeout covers the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from ..config import ConfigError
from ..config.assistant import McpServerSettings
from .tools import Tool, ToolFailure, ToolSpec

__all__ = ["McpTool", "open_mcp_tools"]

_SEPARATOR = "__"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, slots=True)
class McpTool:
    spec: ToolSpec
    remote_name: str
    client: Client

    async def run(self, arguments: dict[str, Any]) -> Any:
        try:
            result = await self.client.call_tool(self.remote_name, arguments)
        except MCPError as exc:
            raise ToolFailure(f"The MCP server refused the call: {str(exc)[:300]}") from None
        text = "\n".join(getattr(block, "text", "") for block in result.content if getattr(block, "text", None))
        if result.is_error:
            raise ToolFailure(text[:1000] or "The MCP tool failed.")
        if result.structured_content is not None:
            return result.structured_content
        return text


async def open_mcp_tools(
    servers: Sequence[McpServerSettings], stack: AsyncExitStack, env: Mapping[str, str]
) -> list[Tool]:
    tools: list[Tool] = []
    for server in servers:
        client = await stack.enter_async_context(Client(_target(server, env, stack)))
        listing = await client.list_tools()
        for remote in listing.tools:
            name = (server.name + _SEPARATOR + _UNSAFE.sub("_", remote.name))[:64]
            parameters = remote.input_schema if remote.input_schema.get("type") == "object" else {"type": "object"}
            spec = ToolSpec(
                name,
                (remote.description or "")[:4000],
                parameters,
                source=f"mcp:{server.name}",
                confirm=remote.name in server.confirm,
                timeout_s=server.timeout_s,
            )
            tools.append(McpTool(spec, remote.name, client))
    return tools


def _target(server: McpServerSettings, env: Mapping[str, str], stack: AsyncExitStack) -> Any:
    def resolved(mapping: dict[str, str], what: str) -> dict[str, str]:
        values = {}
        for name, variable in mapping.items():
            if variable not in env:
                raise ConfigError(f"MCP server {server.name!r}: {what} {name} comes from ${variable}, which is not set")
            values[name] = env[variable]
        return values

    if server.url is not None:
        http = create_mcp_http_client(headers=resolved(server.headers_from_env, "header"))
        stack.push_async_callback(http.aclose)  # the SDK closes only the HTTP clients it made itself
        return streamable_http_client(server.url, http_client=http)
    command, *args = server.command
    return StdioServerParameters(command=command, args=args, env=resolved(server.env_from_env, "variable"))
