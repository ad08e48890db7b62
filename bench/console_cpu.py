"""Each console page's CPU, split by where it is spent: the event loop, template rendering, SQL, Python off the loop.

    PYTHONPATH=src .venv/bin/python bench/console_cpu.py                      # seeds 10,000 keys, 1,000,000 rows
    PYTHONPATH=src .venv/bin/python bench/console_cpu.py --keys 1000 --rows 100000 --loads 5   # smoke

Seeds a SQLite database as `console_bench.py` does (bench/_console_seed.py), builds the gateway app in-process
(the console on, `auth: keys`) and loads each page of `console_bench.pages()` through ASGI, `--loads` times after
two warm-ups. CPU time, not wall time, so a busy machine moves the figures little:

- **loop**: the event loop thread's CPU (`time.thread_time`), the thread the proxy runs on;
- **render**: of that, `Pages.render` (Jinja2);
- **sql**: CPU inside sqlite3's `execute` and `fetch*` on any thread (sqlite3 releases the GIL while a statement
  steps; building its row objects holds it);
- **off-loop Python**: the rest of the CPU off the loop thread (rows turned into dicts on the reader threads, a
  CSV formatted on a thread, the ledger's flush), which holds the GIL;
- **total**: the process's CPU (`time.process_time`).

The meters wrap `sqlite3.connect` (a timed connection and cursor class) and `Pages.render`, nothing of the
gateway's own database code, so two checkouts are measured the same way.

Medians per load, in milliseconds. The live view and its JSON are loaded back to back, so where viewers share a
summary (console/live.py) all but the first load share it: `--no-sharing` measures each read afresh. Run it
against two checkouts (`PYTHONPATH=...`) for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from _console_seed import seed  # noqa: E402
from console_bench import MASTER, pages  # noqa: E402

from aoai_gateway.app import create_app  # noqa: E402
from aoai_gateway.config import Settings  # noqa: E402
from aoai_gateway.console.pages import Pages  # noqa: E402
from aoai_gateway.logs import AccessLog  # noqa: E402


class Meter:
    """CPU seconds spent in the instrumented places, summed over threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sums = {"render": 0.0, "sql": 0.0}

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.sums[name] += seconds

    def take(self) -> dict[str, float]:
        with self.lock:
            taken, self.sums = self.sums, dict.fromkeys(self.sums, 0.0)
        return taken


METER = Meter()


class TimedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> TimedCursor:
        started = time.thread_time()
        try:
            return super().execute(sql, parameters)
        finally:
            METER.add("sql", time.thread_time() - started)

    def fetchall(self) -> list[Any]:
        started = time.thread_time()
        try:
            return super().fetchall()
        finally:
            METER.add("sql", time.thread_time() - started)

    def fetchone(self) -> Any:
        started = time.thread_time()
        try:
            return super().fetchone()
        finally:
            METER.add("sql", time.thread_time() - started)


class TimedConnection(sqlite3.Connection):
    def execute(self, sql: str, parameters: Any = (), /) -> TimedCursor:
        return self.cursor(TimedCursor).execute(sql, parameters)


def instrument() -> None:
    """Time `Pages.render` and every sqlite3 statement (the same work, metered)."""
    render = Pages.render

    def timed_render(self: Pages, template: str, **context: Any) -> bytes:
        started = time.thread_time()
        try:
            return render(self, template, **context)
        finally:
            METER.add("render", time.thread_time() - started)

    Pages.render = timed_render  # type: ignore[method-assign]
    connect = sqlite3.connect

    def timed_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, **kwargs, factory=TimedConnection)

    sqlite3.connect = timed_connect  # type: ignore[assignment]


class Client:
    """A browser on the app itself, through ASGI: cookies kept, the CSRF token of the last page remembered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    async def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        target, _, query = path.partition("?")
        body = urlencode({"csrf": self.csrf, **form}).encode() if form is not None else b""
        headers = [
            (b"host", b"127.0.0.1"),
            (b"cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()),
        ]
        if form is not None:
            headers += [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "method": method,
            "path": target,
            "raw_path": target.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
            "scheme": "http",
            "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        done = asyncio.Event()
        status: list[int] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                for name, value in message["headers"]:
                    if name.lower() == b"set-cookie":
                        key, _, rest = value.decode().partition("=")
                        self.cookies[key.strip()] = rest.split(";", 1)[0]
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()

        await self.app(scope, receive, send)
        data = b"".join(chunks)
        token = re.search(rb'name="csrf" value="([^"]+)"', data)
        if token:
            self.csrf = token[1].decode()
        return status[0], data


async def measure(url: str, workdir: Path, args: argparse.Namespace) -> list[str]:
    seeded = await seed(url, keys=args.keys, rows=args.rows, say=lambda line: print(line, file=sys.stderr))
    instrument()
    settings = Settings.model_validate(
        {
            "auth": "keys",
            "database_url": url,
            "data_dir": str(workdir),
            "admin": {"master_key": MASTER},
            "deployments": [{"model": "gpt-4o", "deployment": "d", "endpoint": "http://127.0.0.1:9/", "api_key": "k"}],
        }
    )
    app = create_app(settings, access_log=AccessLog(_Discard()))
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        started.set()

    life = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, lifespan_send))
    await started.wait()
    client = Client(app)
    await client.request("GET", "/console/sign-in")
    status, _ = await client.request("POST", "/console/sign-in", {"master_key": MASTER})
    assert status == 303, status
    await client.request("GET", "/console/admin")
    lines = [
        "| page | total | loop | of it render | sql | off-loop Python | wall |",
        "| --- | --: | --: | --: | --: | --: | --: |",
    ]
    print("\n".join(lines), flush=True)
    for label, path, form in pages(seeded, args.keys):
        if args.only and not re.search(args.only, label):
            continue
        samples: list[dict[str, float]] = []
        for index in range(args.loads + 2):
            gc.collect()
            METER.take()
            wall, total, loop = time.perf_counter(), time.process_time(), time.thread_time()
            status, data = await client.request("POST" if form is not None else "GET", path, form)
            loop = time.thread_time() - loop
            total = time.process_time() - total
            wall = time.perf_counter() - wall
            assert status == 200, (path, status, data[:300])
            meters = METER.take()
            if index >= 2:
                samples.append({"total": total, "loop": loop, "wall": wall, **meters})
        med = {name: statistics.median(s[name] for s in samples) * 1000 for name in samples[0]}
        off_loop = med["total"] - med["loop"]
        # sqlite3 runs on the reader threads; off-loop Python is what else runs there and on other threads.
        lines.append(
            f"| {label} | {med['total']:.1f} | {med['loop']:.1f} | {med['render']:.1f} | {med['sql']:.1f} "
            f"| {max(0.0, off_loop - med['sql']):.1f} | {med['wall']:.1f} |"
        )
        print(lines[-1], flush=True)
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await life
    return lines


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000, help="keys to seed (default 10000)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage ledger rows to seed (default 1000000)")
    parser.add_argument("--loads", type=int, default=10, help="measured loads of each page (default 10)")
    parser.add_argument("--only", help="a regular expression: only the pages whose label matches")
    parser.add_argument(
        "--no-sharing", action="store_true", help="every live view reads afresh (a checkout with console/live.py)"
    )
    args = parser.parse_args()
    if args.no_sharing:
        from aoai_gateway.console.live import SharedSummaries

        async def unshared(self: Any, key: Any, read: Any) -> Any:
            return await read()

        SharedSummaries.get = unshared  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="aoai-console-cpu-") as tmp:
        asyncio.run(measure(f"sqlite:///{tmp}/gateway.db", Path(tmp), args))


if __name__ == "__main__":
    main()
