"""Pre-aggregated usage: the ledger's rows summed per UTC hour and per UTC day, kept in step by the ledger.

    batches = rollup_batches(rows)                 # the upserts for one ledger flush, same transaction as the rows
    parts = report_parts(since=t, by="model")      # (sql, params) per source that together cover `at >= t`

`usage_hourly` and `usage_daily` hold one row per (bucket, key_id, event_id, model, deployment): requests,
errors (status >= 400), prompt and completion tokens, audio seconds. A report since `t` reads the raw ledger only
for the part of an hour before the first whole hour at or after `t`, the hourly table up to the first whole day,
and the daily table after that: at most an hour of raw rows and 23 hours of hourly ones, whatever the ledger's
size. Without `since` it reads the daily table alone.

The dimensions are nullable, and NULLs never conflict in a unique index (on SQLite or PostgreSQL), so each row
also carries `dims`, a text that names the dimensions unambiguously (NULL and '' differ); the upsert's key is
(bucket, dims). Sums are additive: two rows for the same group (a writer that raced the upsert) still report
right.

Three more tables make reports over many keys cheap (migration 0009): `usage_hourly_totals` and
`usage_daily_totals` are the same sums without the key (key_id always NULL: a few rows a day, whatever the
number of keys), which reports neither grouped by key nor filtered by one read; `usage_ever` holds one row per
dimensions for all time (bucket 0), which reports without `since` and not by day read (a key's usage ever, a page
of attendees, usage by key): one row per key and model, not per key, model and day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .database import Params

HOUR = 3600
DAY = 86400
DIMENSIONS = ("key_id", "event_id", "model", "deployment")
MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "audio_seconds")
EVER = 0  # the span of `usage_ever`: one bucket (0) for all time
TABLES = {HOUR: "usage_hourly", DAY: "usage_daily"}
KEYLESS = {HOUR: "usage_hourly_totals", DAY: "usage_daily_totals"}
EVER_TABLE = "usage_ever"
ROLLUP_TABLES = (*TABLES.values(), *KEYLESS.values(), EVER_TABLE)


def dims(values: Iterable[str | None]) -> str:
    """`dims(["key_a", None])` -> "5:key_a-": each value length-prefixed, NULL as "-" (see `DIMS_SQL`)."""
    return "".join("-" if value is None else f"{len(value)}:{value}" for value in values)


# The same text computed in SQL, for the migration's back-fill; and without the key (its NULL is "-").
DIMS_SQL = " || ".join(f"COALESCE(CAST(LENGTH({d}) AS TEXT) || ':' || {d}, '-')" for d in DIMENSIONS)
KEYLESS_DIMS_SQL = "'-' || " + " || ".join(
    f"COALESCE(CAST(LENGTH({d}) AS TEXT) || ':' || {d}, '-')" for d in DIMENSIONS[1:]
)

_COLUMNS = ("bucket", "dims", *DIMENSIONS, *MEASURES)


def _upsert(table: str) -> str:
    updates = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in MEASURES)
    return (
        f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
        f"ON CONFLICT (bucket, dims) DO UPDATE SET {updates}"
    )


_UPSERTS = {table: _upsert(table) for table in ROLLUP_TABLES}


def _regrouped(
    source: dict[tuple[Any, ...], list[Any]], group: Callable[..., tuple[Any, ...]]
) -> dict[tuple[Any, ...], list[Any]]:
    """`source`'s sums added up under `group(bucket, key_id, event_id, model, deployment)`."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for key, sums in source.items():
        target = group(*key)
        found = out.get(target)
        if found is None:
            out[target] = list(sums)
        else:
            for index, value in enumerate(sums):
                found[index] += value
    return out


def rollup_batches(rows: Sequence[Any]) -> list[tuple[str, list[Params]]]:
    """The upserts that add ledger rows (anything with UsageRow's fields) to every rollup table."""
    hourly: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        # Python's float floor division is exact: a row lands in hour b iff b * 3600 <= at < (b + 1) * 3600.
        group = (int(row.at // HOUR), row.key_id, row.event_id, row.model, row.deployment)
        sums = hourly.get(group)
        if sums is None:
            hourly[group] = [1, int(row.status >= 400), row.prompt_tokens, row.completion_tokens, row.audio_seconds]
        else:
            sums[0] += 1
            sums[1] += row.status >= 400
            sums[2] += row.prompt_tokens
            sums[3] += row.completion_tokens
            sums[4] += row.audio_seconds
    daily = _regrouped(hourly, lambda bucket, *values: (bucket // 24, *values))
    tables = {
        TABLES[HOUR]: hourly,
        TABLES[DAY]: daily,
        KEYLESS[HOUR]: _regrouped(hourly, lambda bucket, key, *values: (bucket, None, *values)),
        KEYLESS[DAY]: _regrouped(daily, lambda bucket, key, *values: (bucket, None, *values)),
        EVER_TABLE: _regrouped(daily, lambda bucket, *values: (EVER, *values)),
    }
    names: dict[tuple[Any, ...], str] = {}  # hours and days of a batch share most of their dimensions
    batches = []
    for table, groups in tables.items():
        rows_out: list[Params] = []
        for (bucket, *values), sums in groups.items():
            key = tuple(values)
            name = names.get(key)
            if name is None:
                name = names[key] = dims(key)
            rows_out.append([bucket, name, *values, *sums])
        # Sorted, so two PostgreSQL writers lock the rows they share in the same order and never deadlock.
        rows_out.sort(key=lambda row: (row[0], row[1]))
        batches.append((_UPSERTS[table], rows_out))
    return batches


def first_bucket(since: float, span: int) -> int:
    """The first bucket of `span` seconds that starts at or after `since`."""
    bucket = int(since // span)
    while bucket * span < since:
        bucket += 1
    return bucket


_RAW_SUMS = (
    "COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
    "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
    "SUM(audio_seconds) AS audio_seconds"
)
_ROLLUP_SUMS = ", ".join(f"SUM({m}) AS {m}" for m in MEASURES)
# The UTC day of a row, as the report has always computed it from the raw ledger.
RAW_DAY = "CAST(FLOOR(at / 86400) AS BIGINT)"
_DAY_OF = {
    "usage": RAW_DAY,
    TABLES[HOUR]: "CAST(FLOOR(bucket / 24.0) AS BIGINT)",
    KEYLESS[HOUR]: "CAST(FLOOR(bucket / 24.0) AS BIGINT)",
    TABLES[DAY]: "bucket",
    KEYLESS[DAY]: "bucket",
}


PRESENT = object()  # a filter value: the dimension is set (a model call, not a listing or a file operation)


def report_parts(
    *, by_column: str, filters: Sequence[tuple[str, Any]], since: float | None
) -> list[tuple[str, list[Any]]]:
    """Per source, `SELECT grp, requests, errors, ... GROUP BY grp` over rows with `at >= since` (all if None).

    `by_column` is a dimension or "day"; `filters` are (dimension, value) pairs that must hold, a tuple value
    meaning any of its (non-empty) values, `PRESENT` any value at all (not NULL).
    """
    where = [
        f"{column} IS NOT NULL"
        if value is PRESENT
        else f"{column} IN ({', '.join('?' * len(value))})"
        if isinstance(value, tuple)
        else f"{column} = ?"
        for column, value in filters
    ]
    values = [
        item
        for _, value in filters
        if value is not PRESENT
        for item in (value if isinstance(value, tuple) else (value,))
    ]
    # Without the key in the grouping or the filters, the keyless sums answer: a few rows a day however many keys.
    keyed = by_column == "key_id" or any(column == "key_id" for column, _ in filters)
    spans = TABLES if keyed else KEYLESS
    if since is None:
        whole = EVER_TABLE if keyed and by_column != "day" else spans[DAY]
        ranges: list[tuple[str, list[str], list[Any]]] = [(whole, [], [])]
    else:
        hour = first_bucket(since, HOUR)
        day = -(-hour // 24)
        ranges = [
            ("usage", ["at >= ?", "at < ?"], [since, float(hour * HOUR)]),
            (spans[HOUR], ["bucket >= ?", "bucket < ?"], [hour, day * 24]),
            (spans[DAY], ["bucket >= ?"], [day]),
        ]
    parts = []
    for table, bounds, limits in ranges:
        group = _DAY_OF[table] if by_column == "day" else by_column
        sums = _RAW_SUMS if table == "usage" else _ROLLUP_SUMS
        conditions = " AND ".join([*where, *bounds])
        clause = f" WHERE {conditions}" if conditions else ""
        parts.append((f"SELECT {group} AS grp, {sums} FROM {table}{clause} GROUP BY {group}", [*values, *limits]))
    return parts
