"""Admin usage reports (signed in): grouped by model, key, day, event or deployment, as a chart, a table and CSV.

    GET {prefix}/admin/usage?by=model&since=7d&event=evt_...&key=key_...
    GET {prefix}/admin/usage.csv?by=day&since=2026-12-01T00:00:00Z

Read from the ledger's hourly and daily rollups (`usage_report`), so a page costs what its groups cost, not what
the requests were; at most `MAX_GROUPS` groups a page, `MAX_EXPORT` rows a CSV. `since` takes a duration
(`30m`, `12h`, `7d`) or an ISO 8601 instant with a zone.
"""

from __future__ import annotations

import asyncio
import csv
import io
import operator
import re
import time
from typing import Any

from ..access.specs import parse_when
from ..csvsafe import neutralise
from ..errors import InvalidRequest
from ..http.paths import Router
from ..store import usage_report
from ..store.usage import GROUPS
from .admin import AdminPages
from .charts import bar_chart
from .pages import Html, Pages, Visit

MAX_GROUPS = 500
MAX_EXPORT = 10_000
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COLUMNS = ("requests", "errors", "prompt_tokens", "completion_tokens", "audio_seconds")


def report_filters(query: dict[str, str], now: float) -> dict[str, Any]:
    """`usage_report`'s arguments from the page's query; `InvalidRequest` naming the bad parameter."""
    by = query.get("by", "model") or "model"
    if by not in GROUPS:
        raise InvalidRequest(f"by must be one of {', '.join(GROUPS)}.", param="by")
    filters: dict[str, Any] = {"by": by}
    since = query.get("since", "").strip()
    if since:
        duration = _DURATION.match(since)
        try:
            filters["since"] = now - int(duration[1]) * _UNITS[duration[2]] if duration else parse_when(since)
        except (ValueError, OverflowError):
            raise InvalidRequest(
                "since: a duration such as 7d, 12h or 30m, or an instant such as 2026-12-01T00:00:00Z; "
                f"got {since[:64]!r}.",
                param="since",
            ) from None
    for param, argument in (("event", "event_id"), ("key", "key_id")):
        value = query.get(param, "").strip()
        if value:
            if not _ID.match(value):
                raise InvalidRequest(f"{param}: an id such as evt_1a2b3c4d or key_1a2b3c4d.", param=param)
            filters[argument] = value
    return filters


class ReportPages:
    def __init__(self, pages: Pages, admin: AdminPages) -> None:
        self.pages = pages
        self.admin = admin

    async def _rows(self, query: dict[str, str], limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        store = self.admin.store()
        filters = report_filters(query, time.time())
        await store.ledger.flush()
        return filters, await usage_report(store.db, **filters, limit=limit)

    async def _names(self, by: str, rows: list[dict[str, Any]]) -> dict[str, str]:
        """The names of the keys or events this page shows (one indexed read of those ids, never a whole table)."""
        store = self.admin.store()
        ids = [row[by] for row in rows if row[by] is not None]
        if by == "key":
            return await store.keys.names(ids)
        if by == "event":
            return await store.events.names(ids)
        return {}

    async def page(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        query = dict(visit.request.query)
        filters, rows = await self._rows(query, MAX_GROUPS)
        by = filters["by"]
        names = await self._names(by, rows)
        for row in rows:
            group = row[by]
            row["label"] = "(none)" if group is None else f"{names[group]} ({group})" if group in names else str(group)
        chart = bar_chart([(row["label"], row["requests"]) for row in rows])
        return visit.html(
            "reports.html",
            title="Usage",
            by=by,
            groups=list(GROUPS),
            query={k: query.get(k, "") for k in ("since", "event", "key")},
            rows=rows,
            chart=chart,
            columns=COLUMNS,
            csv_query=visit.request.scope.get("query_string", b"").decode("latin-1"),
            capped=len(rows) >= MAX_GROUPS,
        )

    async def export(self, visit: Visit, params: dict[str, str]) -> Html:
        self.admin.require(visit)
        filters, rows = await self._rows(dict(visit.request.query), MAX_EXPORT)
        # Up to MAX_EXPORT rows are tens of milliseconds of formatting: on a thread, not the proxy's loop.
        body = await asyncio.to_thread(_csv, filters["by"], rows)
        disposition = f'attachment; filename="usage-by-{filters["by"]}.csv"'.encode()
        return Html(
            200,
            body,
            [*visit.headers(), (b"content-disposition", disposition)],
            no_store=True,
            content_type=b"text/csv; charset=utf-8",
        )


def _csv(by: str, rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([by, *COLUMNS])
    # Only the group is text (a key or model name someone chose); the columns are numbers, which carry no formula.
    values = operator.itemgetter(*COLUMNS)
    writer.writerows((neutralise(row[by]), *values(row)) for row in rows)
    return out.getvalue().encode("utf-8")


def register_routes(router: Router, pages: Pages, reports: ReportPages) -> None:
    router.add(f"{pages.prefix}/admin/usage", ["GET"], pages.reader(reports.page))
    router.add(f"{pages.prefix}/admin/usage.csv", ["GET"], pages.reader(reports.export))
