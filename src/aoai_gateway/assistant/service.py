"""The assistant as the routes and the CLI use it: sessions, turns, the home's state.

    async with open_assistant(settings, caller, db=None) as assistant:     # factory.py, when assistant.enabled
        session = await assistant.create_session(who)
        result = await assistant.turn(session.id, TurnInput(text="lights on in the kitchen"), who, emit)
        assistant.home.snapshot()

Built once with the gateway: the simulated home, the webhook tools (one pooled HTTP session), the MCP servers
(each connected once, closed with the gateway), one tool registry over all of them, and the session store (the
gateway's database when sessions persist, else memory).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp

from ..app import InProcessCaller
from ..config import Settings
from ..errors import NotFound
from ..store.database import Database
from .home import SimulatedHome
from .models import AssistantModels
from .sessions import DatabaseSessions, MemorySessions, Session, SessionStore
from .tools import Tool, ToolRegistry
from .turn import Caller, Emit, TurnInput, TurnResult, TurnRunner
from .webhooks import webhook_tools

__all__ = ["AssistantService", "open_assistant"]


class AssistantService:
    def __init__(
        self, runner: TurnRunner, registry: ToolRegistry, store: SessionStore, home: SimulatedHome | None
    ) -> None:
        self.runner = runner
        self.registry = registry
        self.store = store
        self.home = home
        self.settings = runner.settings

    async def create_session(self, caller: Caller) -> Session:
        return await self.store.create(caller.key_id)

    async def session(self, session_id: str, caller: Caller) -> Session:
        session = await self.store.get(session_id, caller.key_id)
        if session is None:  # another key's session is not found either: its id says nothing
            raise NotFound(f"No assistant session {session_id[:64]!r}; it may have expired. Create a new one.")
        return session

    async def delete_session(self, session_id: str, caller: Caller) -> None:
        if not await self.store.delete(session_id, caller.key_id):
            raise NotFound(f"No assistant session {session_id[:64]!r}.")

    async def turn(self, session_id: str, given: TurnInput, caller: Caller, emit: Emit) -> TurnResult:
        """One turn, after the previous one of this session has finished; the session is saved once it is done."""
        async with self.store.turn_lock(session_id):
            session = await self.session(session_id, caller)
            result = await self.runner.run(session, given, caller, emit)
            await self.store.save(session)
            return result


@asynccontextmanager
async def open_assistant(
    settings: Settings,
    caller: InProcessCaller,
    db: Database | None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[AssistantService]:
    """`db`: the gateway's database when sessions persist; `env`: where webhook headers come from (os.environ)."""
    config = settings.assistant
    async with AsyncExitStack() as stack:
        tools: list[Tool] = []
        home = SimulatedHome() if config.home else None
        if home is not None:
            tools += home.tools()
        if config.webhooks:
            http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))  # each tool's own timeout
            stack.push_async_callback(http.close)
            tools += webhook_tools(config.webhooks, http, os.environ if env is None else env)
        if config.mcp_servers:
            from ..extras import needs

            with needs("mcp", "assistant.mcp_servers"):
                from .mcp_tools import open_mcp_tools
            tools += await open_mcp_tools(config.mcp_servers, stack, os.environ if env is None else env)
        registry = ToolRegistry(tools, max_result_chars=config.max_tool_result_chars)
        store: SessionStore
        if db is not None:
            store = DatabaseSessions(db, config.session_ttl_s)
        else:
            store = MemorySessions(config.max_sessions, config.session_ttl_s)
        runner = TurnRunner(config, AssistantModels(caller, config), registry)
        yield AssistantService(runner, registry, store, home)
