"""Usage reports on a large ledger: the old raw aggregate on the event loop against the rollups off it.

    .venv/bin/python bench/usage_bench.py [--rows 1000000] [--runs 3] [--postgres postgresql://...]

Builds a ledger of `--rows` requests (SQLite in a temporary directory; PostgreSQL too with `--postgres`, in a
database of its own that is dropped at the end) spread over 30 days, 1,000 keys (750 of them in 5 events), 6
models on 12 deployments, written before the rollups' migration so that migration back-fills them (timed). Then,
for each grouping, all time and since an unaligned moment 7 days back, side by side in one run:

- **old**: a copy of the report as it was before the rollups, one aggregate over the raw ledger, run as the old
  `SqliteDatabase.fetch` ran it: on the event loop (on PostgreSQL: through the pool, as before);
- **new**: `usage_report`, which reads the rollups, through the reader threads.

Each is timed `--runs` times (p50 and max), while a second coroutine ticks every 1 ms and records the longest
the loop kept it waiting (**max loop lag**). Also reported: what a ledger flush costs with its rollups, and what a
point read (a key lookup) costs through a reader thread against the old direct call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aoai_gateway.store import (  # noqa: E402
    Database,
    KeySpec,
    KeyStore,
    UsageLedger,
    UsageRow,
    connect_database,
    migrate,
    migrations,
    usage_report,
)
from aoai_gateway.store.usage import _INSERT, GROUPS  # noqa: E402

DAYS = 30
NOW = time.time()


def old_sql(by: str, since: float | None) -> tuple[str, list[Any]]:
    """The report's query before the rollups (store/usage.py at b3d1a97)."""
    where, params = ("", []) if since is None else (" WHERE at >= ?", [since])
    group = "CAST(FLOOR(at / 86400) AS BIGINT)" if by == "day" else GROUPS[by]
    return (
        f"SELECT {group} AS grp, COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        f"SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
        f"SUM(audio_seconds) AS audio_seconds FROM usage{where} GROUP BY {group} ORDER BY {group}",
        params,
    )


def ledger_rows(count: int, seed: int = 1) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "text-embedding-3-small", "whisper-1"]
    keys = []
    for index in range(1000):
        event = f"evt_{index % 5}" if index < 750 else None
        keys.append((f"key_{index:08x}", event, rng.sample(models, rng.randint(1, 3))))
    start = NOW - DAYS * 86400
    times = sorted(rng.uniform(start, NOW) for _ in range(count))
    rows = []
    for at in times:
        key_id, event_id, preferred = rng.choice(keys)
        model = rng.choice(preferred)
        status = 200 if rng.random() > 0.03 else rng.choice([400, 429, 500])
        audio = rng.uniform(1, 60) if model == "whisper-1" else 0.0
        prompt, completion = rng.randint(5, 2000), rng.randint(0, 800)
        deployment = f"{model}-{rng.randint(1, 2)}"
        route = "/v1/chat/completions"
        latency = rng.uniform(50, 3000)
        rows.append((at, key_id, event_id, model, deployment, route, status, prompt, completion, audio, latency))
    return rows


async def build(db: Database, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """The raw ledger written as an older gateway wrote it, then the rollups' migration: seconds of each."""
    names = [name for name, _ in migrations.MIGRATIONS]
    every = migrations.MIGRATIONS
    migrations.MIGRATIONS = every[: names.index("0004_usage_rollups")]
    try:
        await migrate(db)
    finally:
        migrations.MIGRATIONS = every
    started = time.perf_counter()
    for offset in range(0, len(rows), 50_000):
        await db.execute_many(_INSERT, rows[offset : offset + 50_000])
    written = time.perf_counter() - started
    started = time.perf_counter()
    assert await migrate(db) == names[names.index("0004_usage_rollups") :]
    return {"write rows": written, "migrate (back-fill)": time.perf_counter() - started}


async def measured(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(seconds `work` took, the longest a 1 ms ticker waited beyond its 1 ms meanwhile)."""
    done = False
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)  # the ticker is running before the work starts
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done = True
    await tick
    return took, worst


async def compare(db: Database, old: Callable[[str, float | None], Awaitable[Any]], runs: int) -> list[str]:
    since = NOW - 7 * 86400 - 1234.5  # not on an hour: the raw ledger's part of an hour is read too
    idle = [(await measured(lambda: asyncio.sleep(0.1)))[1] * 1000 for _ in range(10)]
    lines = [f"| idle (the ticker alone, 10 x 100 ms) | - | - | - | {max(idle):,.1f} | - | - | {max(idle):,.1f} | - |"]
    print(lines[-1], flush=True)
    for window, start in (("all time", None), ("since 7 d", since)):
        for by in GROUPS:
            samples: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for run in range(runs):
                order = ("old", "new") if run % 2 == 0 else ("new", "old")
                for which in order:
                    if which == "old":
                        samples[which].append(await measured(lambda by=by, start=start: old(by, start)))
                    else:
                        report = lambda by=by, start=start: usage_report(db, by=by, since=start)  # noqa: E731
                        samples[which].append(await measured(report))
            cells = []
            for which in ("old", "new"):
                took = [t * 1000 for t, _ in samples[which]]
                lag = max(lag for _, lag in samples[which]) * 1000
                cells.append(f"{statistics.median(took):,.1f} | {max(took):,.1f} | {lag:,.1f}")
            old_p50 = statistics.median(t for t, _ in samples["old"])
            new_p50 = statistics.median(t for t, _ in samples["new"])
            lines.append(f"| {window} | {by} | {' | '.join(cells)} | {old_p50 / new_p50:,.0f}x |")
            print(lines[-1], flush=True)
    return lines


async def flush_cost(db: Database) -> str:
    """Milliseconds to flush 1,000 rows: raw rows only (as before) and with their rollups (as now)."""
    rows = [UsageRow(*row) for row in ledger_rows(1000, seed=9)]
    raw, full = [], []
    for _ in range(5):
        started = time.perf_counter()
        await db.execute_many(_INSERT, [tuple(row.__getattribute__(f) for f in row.__slots__) for row in rows])
        raw.append(time.perf_counter() - started)
        ledger = UsageLedger(db)
        for row in rows:
            ledger.record(row)
        started = time.perf_counter()
        await ledger.flush()
        full.append(time.perf_counter() - started)
    return (
        f"flush of 1,000 rows: raw rows only {statistics.median(raw) * 1000:.1f} ms, "
        f"with hourly and daily rollups {statistics.median(full) * 1000:.1f} ms (medians of 5)"
    )


async def point_reads(db: Database, path: str) -> str:
    keys = KeyStore(db)
    _, secret = await keys.create(KeySpec("bench"))
    direct = sqlite3.connect(path, isolation_level=None)
    sql = "SELECT id FROM keys WHERE secret_hash = ?"
    results = {}
    for name, work in (
        ("direct on the loop (old fetch)", lambda: direct.execute(sql, ["x"]).fetchall()),
        ("through a reader thread (new fetch)", lambda: db.fetch(sql, ["x"])),
        ("KeyStore.by_secret, cached (the hot path)", lambda: keys.by_secret(secret)),
    ):
        for _ in range(200):
            value = work()
            if asyncio.iscoroutine(value):
                await value
        started = time.perf_counter()
        for _ in range(3000):
            value = work()
            if asyncio.iscoroutine(value):
                await value
        results[name] = (time.perf_counter() - started) / 3000 * 1e6
    direct.close()
    return "point read: " + ", ".join(f"{name} {us:.1f} µs" for name, us in results.items())


HEADER = [
    "| window | by | old p50 ms | old max ms | old max loop lag ms | new p50 ms | new max ms | new max loop lag ms "
    "| old/new p50 |",
    "| --- | --- | --: | --: | --: | --: | --: | --: | --: |",
]


async def sqlite_run(rows: list[tuple[Any, ...]], runs: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="aoai-usage-") as tmp:
        path = f"{tmp}/gateway.db"
        db = await connect_database(f"sqlite:///{path}")
        times = await build(db, rows)
        counts = {
            t: (await db.fetch(f"SELECT COUNT(*) AS n FROM {t}"))[0]["n"] for t in ("usage_hourly", "usage_daily")
        }
        old_connection = sqlite3.connect(path, isolation_level=None)

        async def old(by: str, since: float | None) -> Any:
            sql, params = old_sql(by, since)
            return old_connection.execute(sql, params).fetchall()  # on the loop, as the old fetch ran it

        lines = [
            f"## SQLite: {len(rows):,} rows; {counts['usage_hourly']:,} hourly and {counts['usage_daily']:,} daily "
            "rollup rows; " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()),
            "",
            *HEADER,
        ]
        print("\n".join(lines), flush=True)
        lines += await compare(db, old, runs)
        lines += ["", await flush_cost(db), await point_reads(db, path)]
        print("\n".join(lines[-2:]), flush=True)
        old_connection.close()
        await db.close()
    return lines


async def postgres_run(url: str, rows: list[tuple[Any, ...]], runs: int) -> list[str]:
    import asyncpg  # type: ignore[import-untyped]

    name = f"aoai_usage_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        db = await connect_database(url.rsplit("/", 1)[0] + f"/{name}")
        times = await build(db, rows)
        await db.execute("ANALYZE")

        async def old(by: str, since: float | None) -> Any:
            sql, params = old_sql(by, since)
            return await db.fetch(sql, params)

        lines = [
            f"## PostgreSQL: {len(rows):,} rows; " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()),
            "",
            *HEADER,
        ]
        print("\n".join(lines), flush=True)
        lines += await compare(db, old, runs)
        lines += ["", await flush_cost(db)]
        print(lines[-1], flush=True)
        await db.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL (a database is created and dropped)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = ledger_rows(args.rows)
    # A million tuples kept for the PostgreSQL run would make each full collection a pause of tens of ms on the
    # loop, which the lag figures would blame on the reports: the collector leaves them alone from now on.
    gc.collect()
    gc.freeze()
    print(f"generated {len(rows):,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    lines = await sqlite_run(rows, args.runs)
    if args.postgres:
        lines += ["", *await postgres_run(args.postgres, rows, args.runs)]
    report = "\n".join([f"# Usage reports ({args.runs} runs each, interleaved)", "", *lines])
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"usage-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(report + "\n")
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    try:
        import uvloop  # the loop the server runs on

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
