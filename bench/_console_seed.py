"""A big gateway database for the console benchmark: keys, events and a usage ledger with its rollups.

    seeded = await seed("sqlite:////tmp/x/gateway.db", keys=10_000, rows=1_000_000)
    seeded.event_id, seeded.load_secret, seeded.attendee_secret, seeded.timings

Written the fast way, not through the gateway: events through the store (a few), keys as rows in one
`executemany`, the ledger as rows in batches (`COPY` on PostgreSQL), then the hourly and daily rollups filled
from the ledger by the statements the rollups' migration back-fills them with, so they are the rollups the
gateway itself would have written. Shape: one event running now with a fifth of the keys as attendees (and a
fifth of the ledger, 15% of that in the last 15 minutes: the live page has something to draw), eight past events
with 5% of the keys each, the rest standalone keys; the ledger spread over 30 days, 4 models on 8 deployments.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aoai_gateway.store import Database, KeySpec, KeyStore, connect_database, migrate
from aoai_gateway.store.events import EventSpec, EventStore
from aoai_gateway.store.keys import _COLUMNS as KEY_COLUMNS
from aoai_gateway.store.keys import Limits, hash_secret
from aoai_gateway.store.migrations import MIGRATIONS
from aoai_gateway.store.usage import _COLUMNS as USAGE_COLUMNS
from aoai_gateway.store.usage import _INSERT

DAYS = 30
MODELS = ("gpt-4o", "gpt-4o-mini", "whisper-1", "tts-1")
PAST_EVENTS = 8


@dataclass
class Seeded:
    event_id: str
    load_secret: str  # a key with no caps, for wrk
    attendee_secret: str  # an attendee of the running event, for the attendee's usage page
    keys: int = 0
    rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _rollup_backfill() -> list[str]:
    """The migrations' back-fills, in order: the hourly and daily rollups from the raw ledger, then the keyless
    and all-time ones from those."""
    return [
        statement
        for name, statements in MIGRATIONS
        for statement in statements
        if name in ("0004_usage_rollups", "0009_console") and statement.lstrip().startswith("INSERT INTO usage_")
    ]


async def _events(db: Database, now: float) -> tuple[str, list[str]]:
    store = EventStore(db)
    limits = Limits(daily_requests=500)
    running = await store.create(
        EventSpec("Big Hack Day", now - 2 * 3600, now + 6 * 3600, "Europe/Berlin", None, limits)
    )
    past = []
    for index in range(PAST_EVENTS):
        starts = now - (index + 2) * 3 * 86400
        event = await store.create(EventSpec(f"Workshop {index + 1}", starts, starts + 8 * 3600, "UTC", None, limits))
        past.append(event.id)
    return running.id, past


def _key_rows(count: int, running: str, past: list[str], now: float) -> tuple[list[list[Any]], list[tuple[Any, ...]]]:
    """Key rows (with secret hash and attendee) and, per key, (id, event_id, its activity window)."""
    rows, owners = [], []
    attendees = count // 5
    per_past = count // 20
    for index in range(count):
        if index < attendees:
            event_id, window = running, (now - 2 * 3600, now)
        elif index < attendees + per_past * len(past):
            event_id = past[(index - attendees) // per_past]
            slot = (index - attendees) // per_past
            starts = now - (slot + 2) * 3 * 86400
            window = (starts, starts + 8 * 3600)
        else:
            event_id, window = None, (now - DAYS * 86400, now)
        name = f"Attendee {index:05d}" if event_id else f"service-{index:05d}"
        key, secret = KeyStore._new(KeySpec(name, event_id=event_id))
        key = replace(key, created_at=window[0] + index * 1e-3)
        attendee = f"email:attendee-{index:05d}@example.com" if event_id else None
        rows.append([*KeyStore._values(key), hash_secret(secret), attendee])
        owners.append((key.id, event_id, window))
    return rows, owners


def _ledger(count: int, owners: list[tuple[Any, ...]], running: str, now: float, rng: random.Random) -> list[Any]:
    attendees = [owner for owner in owners if owner[1] == running]
    others = [owner for owner in owners if owner[1] != running]
    rows = []
    for index in range(count):
        key_id, event_id, (start, end) = rng.choice(attendees if index % 5 == 0 else others)
        if event_id == running and rng.random() < 0.15:
            start = now - 15 * 60
        model = MODELS[index % 7 % 4]
        status = 200 if rng.random() > 0.03 else (429, 500)[index % 2]
        audio = rng.uniform(1, 60) if model == "whisper-1" else 0.0
        rows.append(
            (
                rng.uniform(start, end),
                key_id,
                event_id,
                model,
                f"{model}-{index % 2 + 1}",
                "/v1/chat/completions",
                status,
                rng.randint(5, 2000),
                rng.randint(0, 800),
                audio,
                rng.uniform(50, 3000),
            )
        )
    return rows


async def _bulk(db: Database, url: str, key_rows: list[list[Any]], ledger: list[Any]) -> None:
    key_sql = f"INSERT INTO keys ({KEY_COLUMNS}, secret_hash, attendee) VALUES ({', '.join('?' * (len(key_rows[0])))})"
    if db.dialect == "sqlite":
        path = url.split("://", 1)[1].removeprefix("/")
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(key_sql, key_rows)
        connection.executemany(_INSERT, ledger)
        connection.execute("COMMIT")
        connection.close()
        return
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(url)
    try:
        columns = [*KEY_COLUMNS.split(", "), "secret_hash", "attendee"]
        await connection.copy_records_to_table("keys", records=[tuple(row) for row in key_rows], columns=columns)
        await connection.copy_records_to_table("usage", records=ledger, columns=USAGE_COLUMNS)
    finally:
        await connection.close()


async def seed(url: str, *, keys: int, rows: int, say: Any = print) -> Seeded:
    started = time.perf_counter()
    now = time.time()
    rng = random.Random(15)
    db = await connect_database(url)
    try:
        await migrate(db)
        running, past = await _events(db, now)
        key_rows, owners = _key_rows(keys, running, past, now)
        ledger = _ledger(rows, owners, running, now, rng)
        timings = {"generate": time.perf_counter() - started}
        say(f"generated {keys:,} keys and {rows:,} ledger rows in {timings['generate']:.1f} s")
        step = time.perf_counter()
        await _bulk(db, url, key_rows, ledger)
        await db.script(["UPDATE events SET attendees = (SELECT COUNT(*) FROM keys WHERE keys.event_id = events.id)"])
        timings["write keys and ledger"] = time.perf_counter() - step
        step = time.perf_counter()
        await db.script(_rollup_backfill())
        if db.dialect == "postgresql":
            await db.execute("ANALYZE")  # what autovacuum would have done by now on a database this size
        timings["rollups"] = time.perf_counter() - step
        store = KeyStore(db)
        _, load_secret = await store.create(KeySpec("bench-load"))
        # An attendee the bench knows the secret of: enrolled like the others, usage through the load key's rows.
        enrolled = await store.enrol(KeySpec("Bench Attendee", event_id=running), "email:bench-attendee@example.com")
        assert enrolled is not None
        say(", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
        return Seeded(running, load_secret, enrolled[1], keys + 2, rows, timings)
    finally:
        await db.close()
