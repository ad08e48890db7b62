"""The data-access layer on real SQLite and PostgreSQL: migrations, keys, the usage ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aoai_gateway.store import (
    Database,
    KeySpec,
    KeyStore,
    Limits,
    UsageLedger,
    UsageRow,
    connect_database,
    migrate,
    usage_report,
)
from aoai_gateway.store.migrations import MIGRATIONS

from .servers import eventually
from .services import drop_gateway_tables


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    sqlite = f"sqlite:///{tmp_path}/gateway.db"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = await connect_database(url)
    # Every test starts from an empty schema.
    await drop_gateway_tables(database)
    assert await migrate(database) == [name for name, _ in MIGRATIONS]
    yield database
    await database.close()


async def test_migrations_run_once(db: Database) -> None:
    assert await migrate(db) == []
    rows = await db.fetch("SELECT name FROM schema_migrations")
    assert [r["name"] for r in rows] == [name for name, _ in MIGRATIONS]


async def test_concurrent_migrations_on_one_sqlite_file(tmp_path: Path) -> None:
    # The server and a CLI command may start together on a fresh data directory.
    url = f"sqlite:///{tmp_path}/fresh.db"
    first, second = await connect_database(url), await connect_database(url)
    results = await asyncio.gather(migrate(first), migrate(second))
    # Each migration applied exactly once, by one or the other (they may share the work out).
    assert sorted(results[0] + results[1]) == sorted(name for name, _ in MIGRATIONS)
    await first.close()
    await second.close()


async def test_key_lifecycle(db: Database) -> None:
    keys = KeyStore(db)
    spec = KeySpec("team-a", ("gpt-4o",), Limits(rpm=60, budget_tokens=1000), expires_at=time.time() + 3600)
    key, secret = await keys.create(spec)
    assert secret.startswith("sk-gw-") and len(secret) > 40 and key.prefix == secret[:10]
    stored = await db.fetch("SELECT * FROM keys")
    assert secret not in str(stored)  # only the hash is stored
    found = await keys.by_secret(secret)
    assert found is not None and found.id == key.id and found.limits.rpm == 60 and found.models == ("gpt-4o",)
    assert await keys.by_secret(secret + "x") is None
    updated = await keys.update(key.id, rpm=120, models=None, name="team-a2")
    assert updated is not None and updated.limits.rpm == 120 and updated.limits.budget_tokens == 1000
    assert (await keys.get(key.id)) == updated
    assert await keys.revoke(key.id) and not await keys.revoke(key.id)
    revoked = await keys.by_secret(secret)
    assert revoked is not None and revoked.revoked_at is not None
    assert [k.id for k in await keys.list(include_revoked=False)] == []
    assert "secret" not in str(revoked.public())


async def test_usage_ledger_batches_and_reports(db: Database) -> None:
    ledger = UsageLedger(db, flush_seconds=0.05)
    ledger.start()
    day = 86400 * 20000
    for index in range(10):
        ledger.record(
            UsageRow(
                day + index,
                "key_a" if index < 6 else "key_b",
                None,
                "gpt-4o" if index % 2 else "embed",
                "dep",
                "/v1/x",
                200 if index != 3 else 429,
                10,
                5,
                0.0,
                12.5,
            )
        )
    assert (await db.fetch("SELECT COUNT(*) AS n FROM usage"))[0]["n"] == 0  # nothing written on the request path
    counted = await eventually(lambda: db.fetch("SELECT COUNT(*) AS n FROM usage"), lambda rows: rows[0]["n"] == 10)
    assert counted[0]["n"] == 10
    by_key = await usage_report(db, by="key")
    assert by_key == [
        {
            "key": "key_a",
            "requests": 6,
            "errors": 1,
            "prompt_tokens": 60,
            "completion_tokens": 30,
            "audio_seconds": 0.0,
        },
        {
            "key": "key_b",
            "requests": 4,
            "errors": 0,
            "prompt_tokens": 40,
            "completion_tokens": 20,
            "audio_seconds": 0.0,
        },
    ]
    by_day = await usage_report(db, by="day", key_id="key_b", since=day + 8)
    assert by_day == [
        {
            "day": "2024-10-04",
            "requests": 2,
            "errors": 0,
            "prompt_tokens": 20,
            "completion_tokens": 10,
            "audio_seconds": 0.0,
        }
    ]
    ledger.record(UsageRow(day, "key_c", None, "m", "d", "/v1/x", 200, 1, 1, 0.0, 1.0))
    await ledger.close()  # shutdown writes what is pending
    assert (await db.fetch("SELECT COUNT(*) AS n FROM usage"))[0]["n"] == 11


def test_many_processes_opening_new_sqlite_files_at_once(tmp_path: Path) -> None:
    # Switching a new file to WAL takes a lock SQLite does not wait for: every opener must wait and succeed.
    import subprocess
    import sys

    code = (
        "import sys, time; from aoai_gateway.store.database import SqliteDatabase\n"
        "time.sleep(float(sys.argv[2]) - time.time())\n"
        "for n in range(100):\n"
        "    SqliteDatabase(f'{sys.argv[1]}/fresh{n}.db')\n"
    )
    start = str(time.time() + 1.5)
    openers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), start]) for _ in range(4)]
    assert [opener.wait(60) for opener in openers] == [0] * 4
