"""SQLite's side of the store: reads off the event loop, private files, and a lookup that never waits on the loop."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

from aoai_gateway.store import connect_database, migrate
from aoai_gateway.store.database import SqliteDatabase

# A read that keeps SQLite busy for a few hundred milliseconds without any table.
_SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT COUNT(*) AS c FROM n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _max_lag(work: asyncio.Future[object]) -> float:
    """The longest the loop went without running a 1 ms ticker while `work` ran, in seconds."""
    worst = 0.0
    while not work.done():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - before - 0.001)
    return worst


async def test_a_long_read_does_not_block_the_loop_or_other_reads(tmp_path: Path) -> None:
    db = await connect_database(f"sqlite:///{tmp_path}/gateway.db")
    await migrate(db)
    started = time.perf_counter()
    slow = asyncio.ensure_future(db.fetch(_SLOW))
    await asyncio.sleep(0.01)
    # Another reader answers a point read while the slow one is still running.
    assert await db.fetch("SELECT COUNT(*) AS n FROM keys") == [{"n": 0}]
    assert not slow.done()
    lag = await _max_lag(slow)
    assert (await slow) == [{"c": 3000000}]
    assert time.perf_counter() - started > 0.05  # it was slow enough to have blocked, had it run on the loop
    assert lag < 0.05, lag  # generous: the test machine is shared
    await db.close()


async def test_generation_sees_other_connections_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gateway.db"
    db, other = await connect_database(url), await connect_database(url)
    await migrate(db)
    before = db.generation()
    assert before is not None and db.generation() == before
    await other.execute(
        "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at) VALUES ('e', 'e', 0, 1, 'UTC', 0)"
    )
    assert db.generation() != before
    await db.close()
    await other.close()


async def test_new_data_dir_and_database_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "made" / "data"
    old = os.umask(0o022)  # the usual umask, which would give 0755 and 0644
    try:
        db = await connect_database(f"sqlite:///{data}/gateway.db")
        await migrate(db)
        await db.execute(
            "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at) VALUES ('e', 'e', 0, 1, 'UTC', 0)"
        )
        files = [data / name for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm")]
        assert all(path.exists() for path in files)
        assert _mode(data) == 0o700
        assert [_mode(path) for path in files] == [0o600] * 3
        await db.close()
    finally:
        os.umask(old)


async def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)  # the user's choice: not loosened, not changed
    db = SqliteDatabase(str(shared / "gateway.db"))
    await db.close()
    assert _mode(shared) == 0o750
    assert _mode(shared / "gateway.db") == 0o600
