"""Registration's guarantees where they live: the unique index, the seat counter, the migration over old rows, and
the per-address counters shared by replicas through Redis (real SQLite, PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aoai_gateway.access.limiter import MemoryLimiter, RedisLimiter
from aoai_gateway.access.registration import CODE_WINDOW, Registrar
from aoai_gateway.access.specs import Registration
from aoai_gateway.config import AccessSettings
from aoai_gateway.errors import Conflict, PermissionDenied, RateLimited
from aoai_gateway.store import Database, KeySpec, KeyStore, Limits, connect_database, migrate
from aoai_gateway.store import migrations as migrations_module
from aoai_gateway.store.events import EventSpec, EventStore
from aoai_gateway.store.migrations import MIGRATIONS

from .services import drop_gateway_tables


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path}/gateway.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = await connect_database(url)
    await drop_gateway_tables(database)
    yield database
    await database.close()


def spec(max_attendees: int | None = None, code_hash: str | None = None) -> EventSpec:
    now = time.time()
    return EventSpec("Hack", now - 3600, now + 3600, "UTC", None, Limits(), code_hash, max_attendees)


async def test_the_unique_index_decides_concurrent_enrolments(db: Database) -> None:
    await migrate(db)
    event = await EventStore(db).create(spec())
    keys = KeyStore(db)
    # Straight at the store, past the route's read-first check: only the index stands between them.
    made = await asyncio.gather(
        *(keys.enrol(KeySpec(f"ann {i}", event_id=event.id), "email:ann@example.com") for i in range(12))
    )
    assert sum(m is not None for m in made) == 1
    assert len(await keys.list(event_id=event.id)) == 1
    assert await keys.enrol(KeySpec("bo", event_id=event.id), "email:bo@example.com") is not None
    assert await keys.has_attendee(event.id, "email:bo@example.com")
    # Admin-made keys carry no attendee and never collide.
    for _ in range(3):
        await keys.create(KeySpec("ci"))


async def test_seats_are_never_overshot(db: Database) -> None:
    await migrate(db)
    events = EventStore(db)
    event = await events.create(spec(max_attendees=3))
    taken = await asyncio.gather(*(events.take_seat(event.id) for _ in range(10)))
    assert sum(taken) == 3
    await events.release_seat(event.id)
    assert await events.take_seat(event.id) and not await events.take_seat(event.id)
    found = await events.get(event.id)
    assert found is not None and found.attendees == 3


async def test_the_migration_keeps_the_oldest_of_existing_duplicates(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [name for name, _ in MIGRATIONS].index("0003_event_registration")
    monkeypatch.setattr(migrations_module, "MIGRATIONS", MIGRATIONS[:before])
    await migrate(db)
    await db.execute(
        "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at)"
        " VALUES ('evt_old', 'Old', 1, 2, 'UTC', 0)"
    )
    farmed = [("key_a", "Ann@Example.com", 10.0), ("key_b", "ann@example.com ", 11.0), ("key_c", "Bo", 12.0)]
    for key_id, name, created in farmed:
        await db.execute(
            "INSERT INTO keys (id, name, secret_hash, prefix, event_id, created_at)"
            " VALUES (?, ?, ?, 'p', 'evt_old', ?)",
            [key_id, name, key_id + "-hash", created],
        )
    monkeypatch.setattr(migrations_module, "MIGRATIONS", MIGRATIONS)
    assert "0003_event_registration" in await migrate(db)
    rows = await db.fetch("SELECT id, attendee FROM keys ORDER BY id")
    assert {r["id"]: r["attendee"] for r in rows} == {
        "key_a": "email:ann@example.com",
        "key_b": None,  # the later duplicate keeps working but holds no identity
        "key_c": "name:bo",
    }
    keys = KeyStore(db)
    assert await keys.enrol(KeySpec("ann", event_id="evt_old"), "email:ann@example.com") is None
    event = await EventStore(db).get("evt_old")
    assert event is not None and event.attendees == 3 and event.max_attendees is None


async def test_replicas_share_the_address_counters(tmp_path: Path, redis_url: str) -> None:
    import redis.asyncio

    db = await connect_database(f"sqlite:///{tmp_path}/gateway.db")
    await migrate(db)
    events, keys = EventStore(db), KeyStore(db)
    event = await events.create(spec())
    settings = AccessSettings(registrations_per_address=4)
    prefix = f"test-{uuid.uuid4().hex}:"  # other test runs share this Redis database
    clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
    replicas = [Registrar(events, keys, RedisLimiter(c, prefix), settings) for c in clients]
    try:
        for i in range(4):
            await replicas[i % 2].register(event.id, Registration(email=f"r{i}@example.com"), "198.51.100.9")
        for replica in replicas:
            with pytest.raises(RateLimited):
                await replica.register(event.id, Registration(email="r9@example.com"), "198.51.100.9")
        # Another address has its own budget.
        await replicas[0].register(event.id, Registration(email="r9@example.com"), "198.51.100.10")
    finally:
        left = [k async for k in clients[0].scan_iter(prefix + "*")]
        if left:
            await clients[0].delete(*left)
        for client in clients:
            await client.aclose()
        await db.close()


async def test_a_lockout_ends_with_its_quarter_hour(tmp_path: Path) -> None:
    from aoai_gateway.access.codes import hash_code

    db = await connect_database(f"sqlite:///{tmp_path}/gateway.db")
    await migrate(db)
    events = EventStore(db)
    event = await events.create(spec(code_hash=await hash_code("correct-horse")))
    now = [dt.datetime(2030, 1, 1, 12, 0, 1, tzinfo=dt.UTC).timestamp()]
    # The event runs around the injected clock.
    await db.execute(
        "UPDATE events SET starts_at = ?, ends_at = ? WHERE id = ?", [now[0] - 60, now[0] + 86400, event.id]
    )
    registrar = Registrar(
        events, KeyStore(db), MemoryLimiter(), AccessSettings(code_failures_per_address=2), clock=lambda: now[0]
    )
    ann = Registration(name="Ann", code="wrong-guess")
    for _ in range(2):
        with pytest.raises(PermissionDenied):
            await registrar.register(event.id, ann, "192.0.2.1")
    with pytest.raises(RateLimited) as locked:
        await registrar.register(event.id, Registration(name="Ann", code="correct-horse"), "192.0.2.1")
    assert locked.value.headers["retry-after"] == str(CODE_WINDOW - 1)
    now[0] += CODE_WINDOW
    done = await registrar.register(event.id, Registration(name="Ann", code="correct-horse"), "192.0.2.1")
    assert done.secret.startswith("sk-gw-")
    with pytest.raises(Conflict):
        await registrar.register(event.id, Registration(name=" ANN ", code="correct-horse"), "192.0.2.1")
    await db.close()
