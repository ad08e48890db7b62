"""Session stores: bounds, expiry, ownership and the database round trip (real SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aoai_gateway.assistant.sessions import DatabaseSessions, MemorySessions, PendingCall, Session
from aoai_gateway.assistant.turn import is_confirmation
from aoai_gateway.store import connect_database, migrate


def test_trim_keeps_the_newest_messages_from_a_user_message_on() -> None:
    session = Session("s", None, 0, 0)
    session.messages = [
        {"role": "user", "content": "1"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]},
        {"role": "tool", "tool_call_id": "a", "content": "{}"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "2"},
        {"role": "assistant", "content": "two"},
    ]
    session.trim(5)  # a cut at index 1 would orphan the tool result: it moves on to the next user message
    assert session.messages == [{"role": "user", "content": "2"}, {"role": "assistant", "content": "two"}]
    session.trim(10)
    assert len(session.messages) == 2
    # One turn longer than the bound is kept whole rather than emptied or cut inside.
    session.messages = [{"role": "user", "content": "3"}, *[{"role": "tool", "content": str(n)} for n in range(6)]]
    session.trim(4)
    assert len(session.messages) == 7 and session.messages[0]["content"] == "3"


async def test_memory_sessions_expire_evict_and_belong_to_a_key() -> None:
    store = MemorySessions(max_sessions=2, ttl_s=3600)
    first = await store.create("key_a")
    assert await store.get(first.id, "key_b") is None
    assert await store.delete(first.id, "key_b") is False
    assert await store.get(first.id, "key_a") is first
    second, third = await store.create("key_a"), await store.create("key_a")
    assert await store.get(first.id, "key_a") is None  # the least recently used went
    assert await store.get(second.id, "key_a") is second and await store.get(third.id, "key_a") is third

    brief = MemorySessions(max_sessions=10, ttl_s=0.01)
    session = await brief.create(None)
    await asyncio.sleep(0.05)
    assert await brief.get(session.id, None) is None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("postgres_url")  # skipped when PostgreSQL is not reachable
    return url


async def test_database_sessions_round_trip_and_expire(database_url: str) -> None:
    db = await connect_database(database_url)
    try:
        await migrate(db)
        store = DatabaseSessions(db, ttl_s=3600)
        session = await store.create("key_a")
        session.messages = [{"role": "user", "content": "unlock the door \u00e9\u00e8 \U0001f511"}]
        session.pending = PendingCall("call_1", "unlock_door", {"door": "front door"})
        await store.save(session)
        again = await DatabaseSessions(db, ttl_s=3600).get(session.id, "key_a")
        assert again is not None
        assert again.messages == session.messages and again.pending == session.pending
        assert await store.get(session.id, "key_b") is None and await store.get(session.id, None) is None
        assert await store.delete(session.id, "key_a") is True
        assert await store.get(session.id, "key_a") is None

        brief = DatabaseSessions(db, ttl_s=0.01)
        gone = await brief.create(None)
        await asyncio.sleep(0.05)
        assert await brief.get(gone.id, None) is None
    finally:
        await db.close()


def test_what_counts_as_a_yes() -> None:
    for yes in ("yes", "Yes, go ahead.", "yeah do it", "OK", "sure", "please do", "confirm"):
        assert is_confirmation(yes), yes
    for no in ("no", "yes... no wait", "don't", "not now", "cancel that", "what?", "", "yesterday", "okay no"):
        assert not is_confirmation(no), no
