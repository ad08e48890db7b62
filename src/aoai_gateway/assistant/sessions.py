"""Conversations: one `Session` per conversation, bounded in length, expiring when idle, owned by one key.

    store = MemorySessions(max_sessions=10_000, ttl_s=1800)      # or DatabaseSessions(db, ttl_s=1800)
    session = await store.create(key_id="key_1")                  # Session(id="asst_...", messages=[])
    session = await store.get(session.id, key_id="key_1")        # None: unknown, expired, or another key's
    await store.save(session)                                     # after each turn; the idle clock restarts
    async with store.turn_lock(session.id): ...                   # one turn at a time per session

A session holds the chat messages after the system prompt (the user's words, the model's tool calls and answers,
the tool results) and a tool call waiting for the user's confirmation. `trim` keeps the newest `max_messages`,
cutting only before a user message so that no tool result loses the call it answers. With a database, sessions
live in `assistant_sessions` and survive a restart; the lock is per process (a session is served by the replica
its client talks to).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..store.database import Database

__all__ = ["DatabaseSessions", "MemorySessions", "PendingCall", "Session", "SessionStore"]

_PRUNE_EVERY = 256  # saves between sweeps of expired rows


@dataclass(slots=True)
class PendingCall:
    """A tool call that waits for the user's yes in the next turn."""

    call_id: str
    name: str
    arguments: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {"id": self.call_id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class Session:
    id: str
    key_id: str | None
    created_at: float
    updated_at: float
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: PendingCall | None = None

    def trim(self, max_messages: int) -> None:
        """Drop the oldest messages beyond `max_messages`, from a user message on."""
        if len(self.messages) <= max_messages:
            return
        users = [index for index, message in enumerate(self.messages) if message.get("role") == "user"]
        start = len(self.messages) - max_messages
        later = [index for index in users if index >= start]
        # A single turn longer than the bound keeps its own start: its tool results keep their calls.
        del self.messages[: later[0] if later else (users[-1] if users else 0)]

    def public(self, ttl_s: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "assistant.session",
            "created_at": int(self.created_at),
            "expires_at": int(self.updated_at + ttl_s),
            "messages": self.messages,
            "pending_confirmation": self.pending.public() if self.pending else None,
        }

    def state(self) -> bytes:
        pending = self.pending.public() if self.pending else None
        return orjson.dumps({"messages": self.messages, "pending": pending})

    @classmethod
    def restore(cls, row: Any) -> Session:
        state = orjson.loads(row["state"]) if isinstance(row["state"], str | bytes) else row["state"]
        pending = state.get("pending")
        return cls(
            row["id"],
            row["key_id"],
            float(row["created_at"]),
            float(row["updated_at"]),
            list(state.get("messages") or []),
            PendingCall(pending["id"], pending["name"], pending["arguments"]) if pending else None,
        )


def new_session_id() -> str:
    return "asst_" + os.urandom(16).hex()


class SessionStore(Protocol):
    ttl_s: float

    async def create(self, key_id: str | None) -> Session: ...

    async def get(self, session_id: str, key_id: str | None) -> Session | None: ...

    async def save(self, session: Session) -> None: ...

    async def delete(self, session_id: str, key_id: str | None) -> bool: ...

    def turn_lock(self, session_id: str) -> Any: ...


class _TurnLocks:
    """One lock per session id while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (asyncio.Lock(), 0))
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users == 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)


class MemorySessions:
    """Sessions in this process: the least recently used one goes when `max_sessions` are held."""

    def __init__(self, max_sessions: int, ttl_s: float) -> None:
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._locks = _TurnLocks()

    async def create(self, key_id: str | None) -> Session:
        now = time.time()
        session = Session(new_session_id(), key_id, now, now)
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    async def get(self, session_id: str, key_id: str | None) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None or session.key_id != key_id:
            return None
        if time.time() - session.updated_at > self.ttl_s:
            del self._sessions[session_id]
            return None
        self._sessions.move_to_end(session_id)
        return session

    async def save(self, session: Session) -> None:
        session.updated_at = time.time()
        if session.id in self._sessions:  # a session evicted or deleted during its turn stays gone
            self._sessions[session.id] = session

    async def delete(self, session_id: str, key_id: str | None) -> bool:
        session = self._sessions.get(session_id)
        if session is None or session.key_id != key_id:
            return False
        del self._sessions[session_id]
        return True

    def turn_lock(self, session_id: str) -> Any:
        return self._locks.hold(session_id)


class DatabaseSessions:
    """Sessions in the gateway's database (`assistant_sessions`), so they outlive a restart."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._locks = _TurnLocks()
        self._saves = 0

    async def create(self, key_id: str | None) -> Session:
        now = time.time()
        session = Session(new_session_id(), key_id, now, now)
        await self.db.execute(
            "INSERT INTO assistant_sessions (id, key_id, state, created_at, updated_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [session.id, key_id, session.state().decode(), now, now, now + self.ttl_s],
        )
        return session

    async def get(self, session_id: str, key_id: str | None) -> Session | None:
        rows = await self.db.fetch(
            "SELECT id, key_id, state, created_at, updated_at FROM assistant_sessions WHERE id = ? AND expires_at > ?",
            [session_id, time.time()],
        )
        if not rows or rows[0]["key_id"] != key_id:
            return None
        return Session.restore(rows[0])

    async def save(self, session: Session) -> None:
        now = session.updated_at = time.time()
        await self.db.execute(
            "UPDATE assistant_sessions SET state = ?, updated_at = ?, expires_at = ? WHERE id = ?",
            [session.state().decode(), now, now + self.ttl_s, session.id],
        )
        self._saves += 1
        if self._saves % _PRUNE_EVERY == 0:
            await self.db.execute("DELETE FROM assistant_sessions WHERE expires_at <= ?", [now])

    async def delete(self, session_id: str, key_id: str | None) -> bool:
        if await self.get(session_id, key_id) is None:
            return False
        await self.db.execute("DELETE FROM assistant_sessions WHERE id = ?", [session_id])
        return True

    def turn_lock(self, session_id: str) -> Any:
        return self._locks.hold(session_id)
