"""A small MCP server made with the official SDK, for the assistant's tests; run as a script it serves stdio.

python tests/assistant/mcp_server.py               # stdio
app = build_server().streamable_http_app()         # streamable HTTP, under any ASGI server
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build_server() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("thermostat")
    state = {"celsius": 19}

    @server.tool(description="Set the thermostat, in degrees Celsius.")
    def set_temperature(celsius: int) -> dict[str, int]:
        if not 5 <= celsius <= 30:
            raise ToolError(f"{celsius} °C is outside 5..30")  # is_error, with this text for the model
        state["celsius"] = celsius
        return {"celsius": celsius}

    @server.tool(description="Read the thermostat.")
    def get_temperature() -> dict[str, int]:
        return dict(state)

    @server.tool(description="Never answers (the client's timeout must end the call).")
    async def hang() -> str:
        await anyio.sleep_forever()
        return "unreachable"

    @server.tool(description="Repeat a text.")
    def echo(text: str) -> str:
        return text

    return server


if __name__ == "__main__":
    build_server().run("stdio")
