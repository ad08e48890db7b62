"""The usage ledger: one row per request, written off the request path in batches.

    ledger = UsageLedger(db, flush_seconds=1.0)
    ledger.start()                      # inside the running loop
    ledger.record(UsageRow(...))        # no I/O: appended to the next batch
    await ledger.close()                # writes what is pending

A slow database never slows a request: rows wait in memory and go out every `flush_seconds` in one
transaction, together with their sums per hour and per day (store/rollups.py), which reports read. A crash loses
at most the rows of the last `flush_seconds` (1 s by default).

While the database cannot be written, rows stay in memory and the write is retried, backing off to once every
`_MAX_RETRY_SECONDS`; nothing is dropped here. `full` says the buffer holds `max_rows` or more: the access mode
then refuses new calls (see access/runtime.py), so the buffer stops growing with usage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import DependencyUnavailable, StorageFull
from .database import Database
from .rollups import PRESENT, report_parts, rollup_batches

log = logging.getLogger("aoai_gateway.usage")
_MAX_RETRY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class UsageRow:
    at: float
    key_id: str | None
    event_id: str | None
    model: str | None
    deployment: str | None
    route: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    audio_seconds: float
    latency_ms: float


_COLUMNS = [f.name for f in fields(UsageRow)]
_values = operator.attrgetter(*_COLUMNS)  # dataclasses.astuple deep-copies: ten times slower
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# What `by` may be, and the column (or "day") it groups on.
GROUPS = {"model": "model", "key": "key_id", "day": "day", "event": "event_id", "deployment": "deployment"}
_COUNTS = ("requests", "errors", "prompt_tokens", "completion_tokens")
_MINUTES_A_QUERY = 240  # a live view's minutes in one query: SQLite allows 500 SELECTs in one UNION ALL


def _batches(rows: list[UsageRow]) -> list[tuple[str, list[Any]]]:
    # A few microseconds a row (the rollups' grouping): on a thread, so a big batch never holds the loop.
    return [(_INSERT, [_values(row) for row in rows]), *rollup_batches(rows)]


class UsageLedger:
    def __init__(self, db: Database, flush_seconds: float = 1.0, max_rows: int = 100_000) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self._pending: list[UsageRow] = []
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # consecutive failed writes
        self._retry_at = 0.0

    @property
    def backlog(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.max_rows

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def record(self, row: UsageRow) -> None:
        self._pending.append(row)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            if time.monotonic() >= self._retry_at:
                await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self.db.execute_batches(await asyncio.to_thread(_batches, batch))
        except Exception as exc:
            # Keep the rows for the next flush rather than lose them to a database outage.
            self._pending[:0] = batch
            self._failures += 1
            delay = min(self.flush_seconds * 2 ** (self._failures - 1), _MAX_RETRY_SECONDS)
            self._retry_at = time.monotonic() + delay
            if not isinstance(exc, DependencyUnavailable | StorageFull):
                log.exception("usage ledger: writing %d rows failed; will retry", len(batch))
            elif self._failures == 1:
                log.warning("usage ledger: %s; %d rows kept, retrying", exc.message, len(self._pending))
            return
        if self._failures:
            log.warning("usage ledger: written again after %d failed attempts", self._failures)
        self._failures = 0
        self._retry_at = 0.0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})  # a cancel of the caller itself still goes through
        await self.flush()
        if self._pending:
            log.error("usage ledger: the database is unavailable; %d rows could not be written", len(self._pending))


async def usage_report(
    db: Database,
    *,
    by: str = "model",
    key_id: str | None = None,
    event_id: str | None = None,
    since: float | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Requests, errors and tokens grouped by model, key, event, deployment or UTC day, ordered by the group.

    usage_report(db, by="day", key_id="key_1a2b", since=t, limit=100, offset=200)   # the third page of 100

    Read from the hourly and daily rollups (and the raw ledger for the part of an hour before `since`'s first
    whole hour), so its cost follows the number of groups and days, not of requests.
    """
    filters = [(column, value) for column, value in (("key_id", key_id), ("event_id", event_id)) if value is not None]
    parts = report_parts(by_column=GROUPS[by], filters=filters, since=since)
    if limit is not None:
        # The page's groups are among each source's first `offset + limit` groups (a group ranked r overall has
        # at most r - 1 smaller groups in any source it appears in), and each of those sources has all of its
        # rows for that group: so each source stops there, in the order of its index (usage by key reads the
        # first keys, not all of them), and the sums stay exact.
        parts = [
            (f"SELECT * FROM ({sql} ORDER BY grp LIMIT ?) AS part{index}", [*part_params, offset + limit])
            for index, (sql, part_params) in enumerate(parts)
        ]
    params = [value for _, part_params in parts for value in part_params]
    page = ""
    if limit is not None or offset:
        # SQLite needs a LIMIT before an OFFSET and PostgreSQL refuses a negative one: "no limit" is a huge one.
        page = " LIMIT ? OFFSET ?"
        params += [limit if limit is not None else 2**62, offset]
    # The rows come back as the report's own: named and typed in SQL (PostgreSQL sums BIGINTs as NUMERIC), so a
    # page of 10,000 groups is not rebuilt row by row in Python.
    if len(parts) == 1:  # already one row per group (a report without `since`): no second grouping
        sums = [*(f"CAST({m} AS BIGINT) AS {m}" for m in _COUNTS), "audio_seconds"]
        grouping = ""
    else:
        sums = [*(f"CAST(SUM({m}) AS BIGINT) AS {m}" for m in _COUNTS), "SUM(audio_seconds) AS audio_seconds"]
        grouping = " GROUP BY grp"
    union = " UNION ALL ".join(sql for sql, _ in parts)
    report: list[dict[str, Any]] = await db.fetch(
        f'SELECT grp AS "{by}", {", ".join(sums)} FROM ({union}) AS parts{grouping} ORDER BY grp{page}', params
    )
    if by == "day":
        for row in report:
            if row["day"] is not None:
                row["day"] = dt.datetime.fromtimestamp(int(row["day"]) * 86400, dt.UTC).date().isoformat()
    return report


async def key_totals(db: Database, key_id: str, since: float) -> tuple[int, int, int]:
    """(requests since `since`, tokens since `since`, tokens ever) of one key, from the rollups: model calls only,
    as the live counters count them (a listing of models or a file operation reaches no model)."""
    totals = []
    for start in (since, None):
        parts = report_parts(by_column="key_id", filters=[("key_id", key_id), ("model", PRESENT)], since=start)
        rows = await db.fetch(
            "SELECT SUM(requests) AS requests, SUM(prompt_tokens + completion_tokens) AS tokens "
            f"FROM ({' UNION ALL '.join(sql for sql, _ in parts)}) AS parts",
            [value for _, part_params in parts for value in part_params],
        )
        row = rows[0] if rows else {}
        totals.append((int(row.get("requests") or 0), int(row.get("tokens") or 0)))
    (day_requests, day_tokens), (_, tokens) = totals
    return day_requests, day_tokens, tokens


async def usage_by_key(db: Database, key_ids: Sequence[str], since: float | None = None) -> dict[str, dict[str, int]]:
    """Key id -> {"requests", "errors", "tokens"} since `since` (ever when None), from the rollups; keys without
    usage are absent. One query for a whole page of keys (`usage_daily_key`)."""
    if not key_ids:
        return {}
    parts = report_parts(by_column="key_id", filters=[("key_id", tuple(key_ids))], since=since)
    rows = await db.fetch(
        "SELECT grp, SUM(requests) AS requests, SUM(errors) AS errors, "
        "SUM(prompt_tokens) + SUM(completion_tokens) AS tokens "
        f"FROM ({' UNION ALL '.join(sql for sql, _ in parts)}) AS parts GROUP BY grp",
        [value for _, part_params in parts for value in part_params],
    )
    return {
        row["grp"]: {name: int(row[name] or 0) for name in ("requests", "errors", "tokens")}
        for row in rows
        if row["grp"] is not None
    }


async def recent_activity(
    db: Database, *, event_id: str, since: float, until: float, top: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An event's raw ledger rows from `since` to `until`: per UTC minute (requests, errors, tokens; minutes
    without requests included as zeros) and its `top` keys by tokens then requests. Read on the index
    (event_id, at), so its cost follows the window's rows, not the ledger's."""
    sums = (
        "COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        "SUM(prompt_tokens + completion_tokens) AS tokens"
    )
    window = "WHERE event_id = ? AND at >= ? AND at < ?"
    # One range of the index per minute (a row is in minute m when m * 60 <= at < (m + 1) * 60), each summed as
    # it is read: no grouping on a computed minute, which would sort every row of the window first.
    indexes = range(int(since // 60), int(-(-until // 60)))
    spans = [(index, max(since, index * 60.0), min(until, (index + 1) * 60.0)) for index in indexes]
    by_minute: list[dict[str, Any]] = []
    for first in range(0, len(spans), _MINUTES_A_QUERY):
        chunk = spans[first : first + _MINUTES_A_QUERY]
        by_minute += await db.fetch(
            " UNION ALL ".join(f"SELECT CAST(? AS BIGINT) AS minute, {sums} FROM usage {window}" for _ in chunk),
            [value for index, start, end in chunk for value in (index, event_id, start, end)],
        )
    leaders = await db.fetch(
        f"SELECT key_id, {sums} FROM usage {window} AND key_id IS NOT NULL GROUP BY key_id "
        "ORDER BY tokens DESC, requests DESC, key_id LIMIT ?",
        [event_id, since, until, top],
    )
    counted = {int(row["minute"]): row for row in by_minute}
    minutes = []
    for index in indexes:
        row = counted.get(index, {})
        minutes.append(
            {
                "minute": dt.datetime.fromtimestamp(index * 60, dt.UTC).isoformat().replace("+00:00", "Z"),
                **{name: int(row.get(name) or 0) for name in ("requests", "errors", "tokens")},
            }
        )
    top_keys = [
        {"key_id": row["key_id"], **{name: int(row[name] or 0) for name in ("requests", "errors", "tokens")}}
        for row in leaders
    ]
    return minutes, top_keys
