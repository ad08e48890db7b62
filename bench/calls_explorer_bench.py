"""The console's calls explorer on a large call store: each page's queries, and how long they hold the event loop.

    .venv/bin/python bench/calls_explorer_bench.py [--calls 100000] [--runs 5] [--postgres postgresql://...]

Builds a call store of `--calls` processed calls (SQLite in a temporary directory; PostgreSQL too with
`--postgres`, in a database of its own, analysed after the load and dropped at the end), one a minute, each with
the bundled schema's fields and a transcript of 150 words (about 1 KB), 2% of them failed. Then times what the
explorer's list page runs (`calls/browse.py`): the first page, a later page from its cursor, a status filter, a
field filter, a list field filter, a transcript search that matches at once, one that matches nothing (every
document read), and the charts' figures; `--runs` times each (p50, p95 and max), while a second coroutine ticks
every 1 ms and records the longest the loop kept it waiting (**max loop lag**).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
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

from aoai_gateway.calls.browse import CallBrowser, CallFilter  # noqa: E402
from aoai_gateway.calls.store import CallStore  # noqa: E402
from aoai_gateway.store import Database, connect_database, migrate  # noqa: E402

WORDS = ["hello", "we", "want", "a", "quote", "for", "panels", "battery", "thanks", "roof", "next", "week"]
PRODUCTS = ["solar panels", "home battery", "heat pump", "ev charger"]


async def fill(db: Database, calls: int) -> None:
    rng = random.Random(7)
    now = time.time()
    insert = (
        "INSERT INTO calls (id, status, source_uri, name, size, recorded_at, attempts, fields, document, "
        "prompt_tokens, completion_tokens, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, 300, 80, ?, ?)"
    )
    for start in range(0, calls, 10_000):
        rows = []
        for i in range(start, min(calls, start + 10_000)):
            fields = {
                "customer_name": f"Customer {i}",
                "sentiment": rng.choice(["positive", "neutral", "negative"]),
                "products_of_interest": rng.sample(PRODUCTS, 2),
                "budget": f"£{rng.randint(1, 90)},000",
            }
            document = {"fields": fields, "transcript": " ".join(rng.choice(WORDS) for _ in range(150))}
            created = now - (calls - i) * 60
            status = "failed" if i % 50 == 0 else "done"
            texts = [json.dumps(fields), json.dumps(document)]
            rows.append([f"{i:064x}", status, f"/r/{i}.wav", f"{i}.wav", 1, created, *texts, created, created])
        await db.execute_many(insert, rows)


async def lag_while(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(seconds `work` took, the longest a 1 ms ticker waited beyond its 1 ms meanwhile)."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done = True
    await ticker
    return took, worst


async def measure(url: str, calls: int, runs: int) -> list[list[str]]:
    db = await connect_database(url)
    try:
        await migrate(db)
        started = time.perf_counter()
        await fill(db, calls)
        print(f"{db.dialect}: {calls:,} calls written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        if db.dialect == "postgresql":
            # The statistics autovacuum gathers within a minute of such a load: without them the planner cannot
            # tell a common search term from a rare one (migration 0011's index serves only the rare ones well).
            await db.execute("ANALYZE calls")
        browser = CallBrowser(CallStore(db, "bench", 60))
        first = await browser.page(CallFilter())
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("page 1", lambda: browser.page(CallFilter())),
            ("page 2 (cursor)", lambda: browser.page(CallFilter(), first.next_cursor)),
            ("status=failed", lambda: browser.page(CallFilter(status="failed"))),
            ("field sentiment=positive", lambda: browser.page(CallFilter(field=("sentiment", "positive")))),
            ("list field has heat pump", lambda: browser.page(CallFilter(field=("products_of_interest", "heat pump")))),
            ("transcript 'quote for'", lambda: browser.page(CallFilter(text="quote for"))),
            ("transcript, no match", lambda: browser.page(CallFilter(text="zebra"))),
            ("charts' figures", lambda: browser.figures(CallFilter())),
        ]
        _, idle = await lag_while(lambda: asyncio.sleep(0.2))
        table = [[db.dialect, "idle", "-", "-", "-", f"{idle * 1000:.1f}"]]
        for name, work in cases:
            samples = [await lag_while(work) for _ in range(runs)]
            times = [took * 1000 for took, _ in samples]
            lag = max(worst for _, worst in samples) * 1000
            p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else times[0]
            median, most = statistics.median(times), max(times)
            table.append([db.dialect, name, f"{median:.1f}", f"{p95:.1f}", f"{most:.1f}", f"{lag:.1f}"])
        return table
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the store (default 100000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query (default 5)")
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a database of its own is made and dropped")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += await measure(f"sqlite:///{folder}/calls.db", args.calls, args.runs)
    if args.postgres:
        import asyncpg  # type: ignore[import-untyped]

        name = f"calls_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            rows += await measure(args.postgres.rsplit("/", 1)[0] + f"/{name}", args.calls, args.runs)
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()
    print("| database | query | p50 ms | p95 ms | max ms | max loop lag ms |")
    print("| --- | --- | --: | --: | --: | --: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    asyncio.run(main())
