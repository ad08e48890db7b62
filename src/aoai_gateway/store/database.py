"""One small async database interface over SQLite and PostgreSQL, chosen by URL from a registry.

    db = await connect_database("sqlite:///var/lib/aoai-gateway/gateway.db")   # or postgresql://...
    rows = await db.fetch("SELECT id FROM keys WHERE name = ?", ["ci"])

SQL is written once with `?` placeholders and portable types (TEXT, BIGINT, DOUBLE PRECISION); the PostgreSQL
backend numbers the placeholders. SQLite runs in WAL mode: point reads go straight to the connection (tens of
microseconds), writes run on one background thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

Row = dict[str, Any]
Params = Sequence[Any]


class Database(Protocol):
    dialect: str

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    def generation(self) -> int | None:
        """A number that changes whenever another connection commits, or None when the backend cannot tell."""

    async def script(self, statements: Sequence[str]) -> None:
        """Run statements in one transaction (migrations)."""

    async def close(self) -> None: ...


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._reader = self._open(path)
        self._writer = self._open(path)
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.row_factory = sqlite3.Row
        deadline = time.monotonic() + 30
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                # Two processes opening a new database at once (a server and a CLI command, two workers):
                # switching it to WAL takes a lock SQLite does not wait for, so wait for it here.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return [dict(row) for row in self._reader.execute(sql, tuple(params)).fetchall()]

    def generation(self) -> int | None:
        # Changes when any other connection (another process, or our own writer) commits: a cheap cache check.
        value: int = self._reader.execute("PRAGMA data_version").fetchone()[0]
        return value

    async def execute(self, sql: str, params: Params = ()) -> int:
        changed: int = await self._write(lambda: self._writer.execute(sql, tuple(params)).rowcount)
        return changed

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        def run() -> None:
            with self._transaction():
                self._writer.executemany(sql, [tuple(row) for row in rows])

        await self._write(run)

    async def script(self, statements: Sequence[str]) -> None:
        def run() -> None:
            with self._transaction():
                for statement in statements:
                    self._writer.execute(statement)

        await self._write(run)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._writer)

    async def _write(self, work: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writes, work)

    async def close(self) -> None:
        self._writes.shutdown(wait=True)
        self._reader.close()
        self._writer.close()


class _Transaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._connection.execute("ROLLBACK" if kind else "COMMIT")


_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgresDatabase:
        from ..extras import needs

        with needs("postgres", "database_url postgresql://"):
            import asyncpg  # type: ignore[import-untyped]

        return cls(await asyncpg.create_pool(url, min_size=1, max_size=10))

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return [dict(row) for row in await self._pool.fetch(_numbered(sql), *params)]

    def generation(self) -> int | None:
        return None

    async def execute(self, sql: str, params: Params = ()) -> int:
        status: str = await self._pool.execute(_numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.executemany(_numbered(sql), [tuple(row) for row in rows])

    async def script(self, statements: Sequence[str]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            for statement in statements:
                await connection.execute(statement)

    async def close(self) -> None:
        await self._pool.close()


async def _sqlite(url: str) -> Database:
    # As SQLAlchemy reads them: sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
    path = url.split("://", 1)[1].removeprefix("/")
    return SqliteDatabase(path or ":memory:")


async def _postgres(url: str) -> Database:
    return await PostgresDatabase.connect(url)


DATABASES: dict[str, Callable[[str], Awaitable[Database]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


async def connect_database(url: str) -> Database:
    scheme = urlsplit(url).scheme
    try:
        factory = DATABASES[scheme]
    except KeyError:
        raise ValueError(f"database_url {url!r}: use sqlite:///PATH or postgresql://...") from None
    return await factory(url)
