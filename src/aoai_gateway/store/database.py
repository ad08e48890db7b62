"""One small async database interface over SQLite and PostgreSQL, chosen by URL from a registry.

    db = await connect_database("sqlite:///var/lib/aoai-gateway/gateway.db")   # or postgresql://...
    rows = await db.fetch("SELECT id FROM keys WHERE name = ?", ["ci"])

SQL is written once with `?` placeholders and portable types (TEXT, BIGINT, DOUBLE PRECISION); the PostgreSQL
backend numbers the placeholders. SQLite runs in WAL mode: reads run on a small pool of reader threads (each with
its own connection; WAL lets them read while the writer writes) and writes on one writer thread, so neither a
long report nor a slow disk ever stalls the event loop. Reads made inside `console_reads()` (every console page)
run on readers of their own at a lower CPU priority (`CONSOLE_NICE`), so an organiser's report never takes the
CPU from the proxy's loop or its key lookups.

Both backends translate their drivers' failures here and nowhere else: a database that cannot be reached (or is
locked past its timeout, or shutting down) raises `DatabaseUnavailable` (503), a full disk `StorageFull` (507),
each naming the database; any other driver error (a bug, a constraint) passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import DatabaseUnavailable, GatewayError, StorageFull

Row = dict[str, Any]
Params = Sequence[Any]

# How much less CPU the console's reader threads ask for (Linux per-thread nice: at 10 a thread gets about a
# tenth of a core that the proxy's loop also wants, and all of an idle one).
CONSOLE_NICE = 10
_CONSOLE = contextvars.ContextVar("aoai_gateway_console_reads", default=False)


@contextlib.contextmanager
def console_reads() -> Iterator[None]:
    """Reads in here run on the database's low-priority readers: `with console_reads(): html = await page(...)`.

    For work that can wait (console pages, reports); writes are unaffected (one writer: a lowered writer would
    hold the write lock longer, and the proxy's ledger flushes wait on it).
    """
    token = _CONSOLE.set(True)
    try:
        yield
    finally:
        _CONSOLE.reset(token)


class Database(Protocol):
    dialect: str
    name: str  # what messages call it: "SQLite /var/lib/.../gateway.db", "PostgreSQL db:5432/gateway"

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    async def execute_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        """Run `executemany` for each (sql, rows) pair, all in one transaction."""

    def generation(self) -> int | None:
        """A number that changes whenever another connection commits, or None when the backend cannot tell."""

    async def script(self, statements: Sequence[str]) -> None:
        """Run statements in one transaction (migrations)."""

    async def close(self) -> None: ...


# SQLite's primary result codes (`sqlite_errorcode & 0xff`) that say the database, not the statement, failed.
_SQLITE_FULL = 13
_SQLITE_UNAVAILABLE = frozenset({5, 6, 8, 10, 14})  # BUSY, LOCKED, READONLY, IOERR, CANTOPEN


def _sqlite_error(exc: sqlite3.Error, name: str) -> GatewayError | None:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL:
        return StorageFull(name)
    if code in _SQLITE_UNAVAILABLE:
        return DatabaseUnavailable(f"{name}: {exc}")
    return None


def _postgres_error(exc: BaseException, name: str) -> GatewayError | None:
    import asyncpg  # type: ignore[import-untyped]

    if isinstance(exc, asyncpg.DiskFullError):
        return StorageFull(name)
    unavailable = (
        asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
        asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
        asyncpg.TooManyConnectionsError,
        OSError,  # refused, unreachable
        TimeoutError,
        # The client's side of a connection broken by an outage: asyncpg's pool, restoring its minimum of
        # connections while the server is down, can hand out one it is still reconnecting ("another operation is
        # in progress"). The database is what failed, not the statement.
        asyncpg.exceptions.InternalClientError,
    )
    if isinstance(exc, unavailable):
        return DatabaseUnavailable(f"{name}: {type(exc).__name__}: {exc}")
    return None


class SqliteDatabase:
    """SQLite in WAL mode: reads on a small pool of reader threads, writes on one writer thread.

    SqliteDatabase("/var/lib/aoai-gateway/gateway.db", readers=4)

    Nothing here runs SQL on the event loop but `generation()`, a `PRAGMA data_version` on a connection of its
    own that never waits for a lock: a report scanning a million rows holds one reader, key lookups take another.
    New files are private: the directory made for the database is 0700, the database (and so its -wal and -shm,
    which SQLite creates with the database's mode) 0600; an existing directory or file keeps its mode.
    """

    dialect = "sqlite"

    def __init__(self, path: str, readers: int = 4) -> None:
        if path != ":memory:":
            _private_file(Path(path))
        self._path = path
        self.name = f"SQLite {path}"
        self._writer = self._open(path)
        self._probe = self._open(path)
        # A lock is never waited for on the event loop: `generation()` answers None ("cannot tell") instead.
        self._probe.execute("PRAGMA busy_timeout=0")
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._threads: dict[str, set[int]] = {"reader": set(), "console reader": set(), "writer": set()}
        self._writes = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-writer", initializer=self._started, initargs=("writer", 0)
        )
        self._reads = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="sqlite-reader", initializer=self._started, initargs=("reader", 0)
        )
        # Two: a report and a live view at once; more would only share the same lowered slice of the CPU.
        self._console_reads = ThreadPoolExecutor(
            max_workers=2,
            thread_name_prefix="sqlite-console-reader",
            initializer=self._started,
            initargs=("console reader", CONSOLE_NICE),
        )

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

    def _started(self, role: str, nice: int) -> None:
        # Each pool thread as it starts: a lower priority for the console's (per thread on Linux, where a
        # thread's native id is its own scheduling entity; elsewhere PRIO_PROCESS would mean the whole process).
        tid = threading.get_native_id()
        if nice and sys.platform == "linux":
            with contextlib.suppress(OSError):  # a sandbox that refuses it: the reads still run, at full priority
                # Relative to the process's own (a gateway started under `nice` stays below its console).
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        self._threads[role].add(tid)

    def threads(self) -> dict[str, list[int]]:
        """The native ids of the threads that have run this database's work, by role ("reader", "console
        reader", "writer"): `/proc/self/task/<id>` for each, in diagnostics and tests."""
        return {role: sorted(ids) for role, ids in self._threads.items()}

    def _reader(self) -> sqlite3.Connection:
        # One connection per reader thread, opened on its first read and closed by `close()`.
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open(self._path)
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        def run() -> list[Row]:
            return [dict(row) for row in self._reader().execute(sql, tuple(params)).fetchall()]

        pool = self._console_reads if _CONSOLE.get() else self._reads
        with self._translated():
            rows: list[Row] = await asyncio.get_running_loop().run_in_executor(pool, run)
        return rows

    def generation(self) -> int | None:
        # Changes when any other connection (another process, or our own writer) commits: a cheap cache check
        # (a few microseconds: it reads the WAL index header from shared memory, no table).
        try:
            value: int = self._probe.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.OperationalError:
            return None  # busy (a crashed writer's WAL being recovered): the caller reads instead
        return value

    async def execute(self, sql: str, params: Params = ()) -> int:
        changed: int = await self._write(lambda: self._writer.execute(sql, tuple(params)).rowcount)
        return changed

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        await self.execute_batches([(sql, rows)])

    async def execute_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        def run() -> None:
            with self._transaction():
                for sql, rows in batches:
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
        with self._translated():
            return await asyncio.get_running_loop().run_in_executor(self._writes, work)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            error = _sqlite_error(exc, self.name)
            if error is None:
                raise
            raise error from exc

    async def close(self) -> None:
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)
        self._console_reads.shutdown(wait=True)
        for connection in [*self._readers, self._probe, self._writer]:
            connection.close()


def _private_file(path: Path) -> None:
    """Make the database's directory 0700 and its file 0600 when they do not exist yet."""
    directory = path.parent
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Another process may make it first; it makes it the same way.
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
            directory.chmod(0o700)  # mkdir's mode passes through the umask; be exact
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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

    def __init__(self, pool: Any, name: str = "PostgreSQL") -> None:
        self._pool = pool
        self.name = name

    @classmethod
    async def connect(cls, url: str) -> PostgresDatabase:
        from ..extras import needs

        with needs("postgres", "database_url postgresql://"):
            import asyncpg

        parts = urlsplit(url)
        name = f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"  # never the password
        # A connection attempt to a host that does not answer fails after 5 s (asyncpg's default is 60).
        return cls(await asyncpg.create_pool(url, min_size=1, max_size=10, timeout=5), name)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            error = _postgres_error(exc, self.name)
            if error is None:
                raise
            raise error from exc

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with self._translated():
            return [dict(row) for row in await self._pool.fetch(_numbered(sql), *params)]

    def generation(self) -> int | None:
        return None

    async def execute(self, sql: str, params: Params = ()) -> int:
        with self._translated():
            status: str = await self._pool.execute(_numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        await self.execute_batches([(sql, rows)])

    async def execute_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        with self._translated():
            async with self._pool.acquire() as connection, connection.transaction():
                for sql, rows in batches:
                    await connection.executemany(_numbered(sql), [tuple(row) for row in rows])

    async def script(self, statements: Sequence[str]) -> None:
        with self._translated():
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
