"""The usage ledger: one row per request, written off the request path in batches.

    ledger = UsageLedger(db, flush_seconds=1.0)
    ledger.start()                      # inside the running loop
    ledger.record(UsageRow(...))        # no I/O: appended to the next batch
    await ledger.close()                # writes what is pending

A slow database never slows a request: rows wait in memory and go out every `flush_seconds` in one
transaction. A crash loses at most the rows of the last `flush_seconds` (1 s by default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import operator
from dataclasses import dataclass, fields
from typing import Any

from .database import Database

log = logging.getLogger("aoai_gateway.usage")


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
GROUPS = {"model": "model", "key": "key_id", "day": "day", "event": "event_id", "deployment": "deployment"}


class UsageLedger:
    def __init__(self, db: Database, flush_seconds: float = 1.0) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self._pending: list[UsageRow] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def record(self, row: UsageRow) -> None:
        self._pending.append(row)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self.db.execute_many(_INSERT, [_values(row) for row in batch])
        except Exception:
            # Keep the rows for the next flush rather than lose them to a database hiccup.
            log.exception("usage ledger: writing %d rows failed; will retry", len(batch))
            self._pending[:0] = batch

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})  # a cancel of the caller itself still goes through
        await self.flush()


async def usage_report(
    db: Database,
    *,
    by: str = "model",
    key_id: str | None = None,
    event_id: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Requests, errors and tokens grouped by model, key, event, deployment or UTC day."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("key_id", key_id), ("event_id", event_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        conditions.append("at >= ?")
        params.append(since)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    group = "CAST(FLOOR(at / 86400) AS BIGINT)" if by == "day" else GROUPS[by]
    rows = await db.fetch(
        f"SELECT {group} AS grp, COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        f"SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
        f"SUM(audio_seconds) AS audio_seconds FROM usage{where} GROUP BY {group} ORDER BY {group}",
        params,
    )
    report = []
    for row in rows:
        name = row.pop("grp")
        if by == "day" and name is not None:
            name = dt.datetime.fromtimestamp(int(name) * 86400, dt.UTC).date().isoformat()
        report.append({by: name, **{k: (int(v) if k != "audio_seconds" else float(v or 0)) for k, v in row.items()}})
    return report


async def key_totals(db: Database, key_id: str, since: float) -> tuple[int, int, int]:
    """(requests since `since`, tokens since `since`, tokens ever) of one key, from the ledger."""
    rows = await db.fetch(
        "SELECT SUM(CASE WHEN at >= ? THEN 1 ELSE 0 END) AS day_requests, "
        "SUM(CASE WHEN at >= ? THEN prompt_tokens + completion_tokens ELSE 0 END) AS day_tokens, "
        "SUM(prompt_tokens + completion_tokens) AS tokens FROM usage WHERE key_id = ?",
        [since, since, key_id],
    )
    row = rows[0] if rows else {}
    return int(row.get("day_requests") or 0), int(row.get("day_tokens") or 0), int(row.get("tokens") or 0)
