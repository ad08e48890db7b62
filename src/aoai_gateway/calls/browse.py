"""Browsing the call store: filtered pages newest first, and the figures the console's charts draw.

    browser = CallBrowser(store)
    page = await browser.page(CallFilter(status="done", field=("sentiment", "positive"), text="battery"))
    page.records, page.next_cursor            # 50 calls, and where the next page starts (None: the last page)
    figures = await browser.figures(CallFilter())   # calls per week, sentiment, products, budgets

Pages are keyset-paginated on `(created_at, id)`, which migration 0009 indexes (with `status` in front for a status
filter), so page 1,000 costs what page 1 does. A field filter is the store's own clause (a scalar equal to the
value, or a list holding it; bound parameters only). Transcript search is a case-insensitive substring of the
stored transcript: SQLite reads the documents the other filters leave (a window at a time, which is why it pairs
well with a date range); PostgreSQL finds them on a pg_trgm index where migration 0011 could make one.
Every query goes through the store's async database (aiosqlite threads, asyncpg), never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .errors import QueryError
from .store import _COLUMNS, STATUSES, CallRecord, CallStore, field_clause

__all__ = ["CallBrowser", "CallFilter", "CallPage", "CallSelection", "Figures", "budget_band"]

PAGE_SIZE = 50
FIGURE_CALLS = 10_000  # the charts read at most this many (the newest) of the matching calls
SEARCH_WINDOW = 10_000  # a transcript search reads at most this many documents a page
_AFTER = "(created_at < ? OR (created_at = ? AND id < ?))"  # older than a cursor (newest first)
_NOT_BEFORE = "(created_at > ? OR (created_at = ? AND id >= ?))"  # not older than a window's edge
# The same test in both: the lower-cased search text is a substring of the lower-cased transcript. PostgreSQL's is a
# LIKE with the text's wildcards escaped (`\` is LIKE's default escape), so migration 0011's pg_trgm index on
# `lower(document ->> 'transcript')` can serve it; without that index it reads each document, as strpos did.
_TRANSCRIPT = {
    "sqlite": "instr(lower(json_extract(document, '$.transcript')), lower(?)) > 0",
    "postgresql": "lower(document ->> 'transcript') LIKE '%' || lower(?) || '%'",
}
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_CURSOR = re.compile(r"^(\d{1,12}(?:\.\d{1,9})?)~([0-9a-f]{1,64})$")


@dataclass(frozen=True, slots=True)
class CallFilter:
    status: str | None = None
    since: float | None = None  # created_at >= since (epoch seconds)
    until: float | None = None  # created_at < until
    field: tuple[str, str] | None = None  # (extracted field, value)
    text: str | None = None  # a substring of the transcript, any case

    def where(self, dialect: str, *, text: bool = True) -> tuple[list[str], list[Any]]:
        """The WHERE clauses and their parameters; `text=False`: all but the transcript search."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.status:
            if self.status not in STATUSES:
                raise QueryError(f"status {self.status!r}: one of {', '.join(STATUSES)}")
            clauses.append("status = ?")
            params.append(self.status)
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("created_at < ?")
            params.append(self.until)
        if self.field is not None:
            clause, values = field_clause(dialect, *self.field)
            clauses.append(clause)
            params += values
        if self.text and text:
            clause, value = self.search(dialect)
            clauses.append(clause)
            params.append(value)
        return clauses, params

    def search(self, dialect: str) -> tuple[str, str]:
        """The transcript search's clause and its parameter."""
        if not self.text or "\x00" in self.text:
            raise QueryError("the search text is empty or holds a NUL character, which no transcript can")
        return _TRANSCRIPT[dialect], self.text.translate(_LIKE_SPECIAL) if dialect == "postgresql" else self.text


@dataclass(frozen=True, slots=True)
class CallPage:
    records: list[CallRecord]
    next_cursor: str | None
    # A transcript search reads at most SEARCH_WINDOW calls a page: True when this page's window ended before a
    # full page was found, so `next_cursor` goes on searching older calls from where it stopped.
    window_ended: bool = False


@dataclass(frozen=True, slots=True)
class CallSelection:
    records: list[CallRecord]  # the newest matching calls, newest first
    truncated: bool  # more calls match than were asked for


@dataclass(frozen=True, slots=True)
class Figures:
    per_week: list[tuple[str, int]]  # ("2026-11-30", calls created that week), oldest first
    sentiment: list[tuple[str, int]]
    products: list[tuple[str, int]]
    budgets: list[tuple[str, int]]
    calls: int  # how many calls the figures read


class CallBrowser:
    def __init__(self, store: CallStore) -> None:
        self.store = store

    async def page(self, where: CallFilter, cursor: str | None = None, size: int = PAGE_SIZE) -> CallPage:
        """One page, newest first, starting after `cursor` (a previous page's `next_cursor`)."""
        dialect = self.store.db.dialect
        clauses, params = where.where(dialect, text=False)
        if cursor:
            found = _CURSOR.match(cursor)
            if not found:
                raise QueryError("cursor: use the link of the previous page")
            clauses, params = [*clauses, _AFTER], [*params, *_after(float(found[1]), found[2])]
        edge = None
        if where.text:
            # Reading transcripts costs a document each: a page reads at most SEARCH_WINDOW of the calls the
            # other filters leave (found on the index), and says where it stopped.
            edge = await self._edge(clauses, params)
            clause, value = where.search(dialect)
            clauses, params = [*clauses, clause], [*params, value]
            if edge is not None:
                clauses, params = [*clauses, _NOT_BEFORE], [*params, *_after(*edge)]
        records = await self._select(clauses, params, size + 1)
        if len(records) > size:
            last = records[size - 1]
            return CallPage(records[:size], _cursor(last.created_at, last.id))
        if edge is not None:
            return CallPage(records, _cursor(*edge), window_ended=True)
        return CallPage(records, None)

    async def _edge(self, clauses: list[str], params: list[Any]) -> tuple[float, str] | None:
        """(created_at, id) of the oldest call in this page's search window; None when fewer calls are left."""
        sql = "SELECT created_at, id FROM calls"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {SEARCH_WINDOW - 1}"
        rows = await self.store.db.fetch(sql, params)
        return (float(rows[0]["created_at"]), str(rows[0]["id"])) if rows else None

    async def matching(self, where: CallFilter, limit: int) -> CallSelection:
        """The newest `limit` calls that match (exports), and whether more do. A transcript search goes through
        the search windows one after another, as the pages do, so no query reads more than SEARCH_WINDOW
        documents and the selection holds every match up to `limit`, not only those of the newest window."""
        records: list[CallRecord] = []
        cursor: str | None = None
        while True:  # one more than `limit` tells that more match
            page = await self.page(where, cursor, limit + 1 - len(records))
            records += page.records
            cursor = page.next_cursor
            if cursor is None or len(records) > limit:  # the last window searched, or enough found
                return CallSelection(records[:limit], truncated=len(records) > limit)

    async def figures(self, where: CallFilter) -> Figures:
        """The charts' counts over the newest `FIGURE_CALLS` matching calls (with a transcript search: those
        among the newest `SEARCH_WINDOW`), grouped in the database: three queries, only the groups come back."""
        dialect = self.store.db.dialect
        clauses, params = where.where(dialect)
        if where.text and (edge := await self._edge(*where.where(dialect, text=False))) is not None:
            # As a page does: a transcript search reads the newest SEARCH_WINDOW calls' documents at most.
            clauses, params = [*clauses, _NOT_BEFORE], [*params, *_after(*edge)]
        where_sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        window = f"{where_sql} ORDER BY created_at DESC, id DESC LIMIT {FIGURE_CALLS}) AS c"
        newest = f"(SELECT created_at, fields FROM calls{window}"
        sql = _FIGURES[dialect]
        weeks = await self.store.db.fetch(  # the index alone, without a filter on the fields: no document read
            f"SELECT {sql['week']} AS week, COUNT(*) AS n FROM (SELECT created_at FROM calls{window} GROUP BY 1",
            params,
        )
        pairs = await self.store.db.fetch(
            f"SELECT {sql['sentiment']} AS sentiment, {sql['budget']} AS budget, COUNT(*) AS n FROM {newest} "
            "WHERE c.fields IS NOT NULL GROUP BY 1, 2",
            params,
        )
        products = await self.store.db.fetch(
            f"SELECT lower(e.value) AS product, COUNT(*) AS n FROM {newest}, {sql['products']} "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12",
            params,
        )
        sentiment: Counter[str] = Counter()
        budgets: Counter[str] = Counter()
        for row in pairs:
            sentiment[_text(row["sentiment"]) or "(not stated)"] += int(row["n"])
            budgets[budget_band(row["budget"])] += int(row["n"])
        per_week = sorted((_monday(int(row["week"])), int(row["n"])) for row in weeks)
        return Figures(
            per_week,
            sentiment.most_common(),
            [(str(row["product"]), int(row["n"])) for row in products if _text(row["product"])],
            sorted(budgets.items(), key=lambda band: _BAND_ORDER.index(band[0])),
            sum(count for _, count in per_week),
        )

    async def _select(self, clauses: list[str], params: list[Any], limit: int) -> list[CallRecord]:
        sql = f"SELECT {_COLUMNS} FROM calls"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {int(limit)}"
        return [CallRecord.from_row(row) for row in await self.store.db.fetch(sql, params)]


# Weeks are counted from Monday 1970-01-05 (345,600 s after the epoch, a Thursday); the bundled schema's fields.
_MONDAY = 345_600
_FIGURES = {
    "sqlite": {
        "week": f"CAST((c.created_at - {_MONDAY}) / 604800 AS INTEGER)",
        "sentiment": "json_extract(c.fields, '$.sentiment')",
        "budget": "json_extract(c.fields, '$.budget')",
        "products": "json_each(CASE WHEN json_type(c.fields, '$.products_of_interest') = 'array' "
        "THEN json_extract(c.fields, '$.products_of_interest') ELSE '[]' END) AS e",
    },
    "postgresql": {
        "week": f"FLOOR((c.created_at - {_MONDAY}) / 604800)",
        "sentiment": "c.fields ->> 'sentiment'",
        "budget": "c.fields ->> 'budget'",
        "products": "jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.fields -> 'products_of_interest') = 'array' "
        "THEN c.fields -> 'products_of_interest' ELSE '[]'::jsonb END) AS e(value)",
    },
}
_AMOUNT = re.compile(r"(\d[\d,.]*)\s*(k|thousand|m|million)?", re.IGNORECASE)
_BANDS = [(1_000, "under 1k"), (5_000, "1k to 5k"), (10_000, "5k to 10k"), (50_000, "10k to 50k")]
_BAND_ORDER = [label for _, label in _BANDS] + ["50k and over", "(not stated)"]


def budget_band(value: Any) -> str:
    """The band of a budget as said ("£9,000", "about 12k", "$1.5 million"), any currency; "(not stated)"."""
    text = _text(value)
    found = _AMOUNT.search(text.replace("\u00a0", " ")) if text else None
    if found is None:
        return "(not stated)"
    try:
        amount = float(found[1].replace(",", ""))
    except ValueError:
        return "(not stated)"
    unit = (found[2] or "").lower()
    amount *= 1_000 if unit in ("k", "thousand") else 1_000_000 if unit in ("m", "million") else 1
    return next((label for top, label in _BANDS if amount < top), "50k and over")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else "" if value is None else str(value)


def _after(created_at: float, call_id: str) -> list[Any]:
    return [created_at, created_at, call_id]


def _cursor(created_at: float, call_id: str) -> str:
    return f"{created_at!r}~{call_id}"


def _monday(week: int) -> str:
    """The date of the Monday that starts week number `week` (as the queries count them)."""
    return dt.datetime.fromtimestamp(_MONDAY + week * 604800, dt.UTC).date().isoformat()
