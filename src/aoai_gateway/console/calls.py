"""The calls explorer (signed-in admins): the analysed calls, one call with its recording, charts and exports.

    GET  {prefix}/admin/calls?status=done&since=2026-11-01&until=2026-11-30&field=sentiment&value=positive&q=battery
    GET  {prefix}/admin/calls.csv?...   {prefix}/admin/calls.jsonl?...   the same filters, up to MAX_EXPORT calls
                                        (a transcript search: every match, window after window; when more match,
                                        the file is calls-newest-10000.csv and x-gateway-export-truncated says so)
    GET  {prefix}/admin/calls/{id}          transcript synced with the player, fields with their quotes, models
    GET  {prefix}/admin/calls/{id}/audio    the recording, with HTTP Range (calls/playback.py decides what may play)
    POST {prefix}/admin/calls/{id}/retry    a failed call back to the queue, as `calls retry ID` does

The call store is the pipeline's (`calls.database_url`, else the gateway's database); pages are keyset-paginated
and every query runs through its async database (calls/browse.py). The audio route answers errors as OpenAI's
JSON (a media element reads no HTML), and serves only recordings inside `calls.playback_sources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..calls.browse import PAGE_SIZE, SEARCH_WINDOW, CallBrowser, CallFilter
from ..calls.errors import QueryError
from ..calls.export import write_export
from ..calls.playback import Playback, Recording
from ..calls.store import FAILED, STATUSES, CallRecord, CallStore
from ..calls.transcript import Transcript
from ..config.calls import CallsSettings
from ..errors import Conflict, GatewayError, InvalidRequest, NotFound, RangeNotSatisfiable
from ..http.asgi import RawHeaders, Send
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_error
from .admin import AdminPages
from .charts import bar_chart
from .pages import Html, Pages, Visit
from .security import page_headers

MAX_EXPORT = 10_000
_CALL_ID = re.compile(r"^[0-9a-f]{6,64}$")
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")
_FILTERS = ("status", "since", "until", "field", "value", "q")
_EXPORTS = {"csv": b"text/csv; charset=utf-8", "jsonl": b"application/jsonl; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class CallArchive:
    """What the explorer reads: the pipeline's store, the sources it may play from, the schema's field names."""

    store: CallStore
    playback: Playback
    settings: CallsSettings
    fields: list[str]


def schema_fields(path: str | None) -> list[str]:
    """The extraction schema's property names (the field filter's choices), read without the `calls` extra's
    jsonschema: the explorer runs in any gateway with the console. An unreadable schema gives none."""
    try:
        if path is None:
            text = resources.files("aoai_gateway.calls").joinpath("default_schema.json").read_text(encoding="utf-8")
        else:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        properties = json.loads(text).get("properties")
    except (OSError, ValueError, AttributeError):
        return []
    return [str(name) for name in properties] if isinstance(properties, dict) else []


def call_filter(query: dict[str, str]) -> CallFilter:
    """The explorer's filters from its query string; `InvalidRequest` naming the bad parameter."""
    status = query.get("status", "").strip() or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status: one of {', '.join(STATUSES)}.", param="status")
    field, value = query.get("field", "").strip(), query.get("value", "").strip()
    if bool(field) != bool(value):
        raise InvalidRequest("Give both a field and the value to look for, or neither.", param="field")
    text = query.get("q", "").strip()
    if len(text) > 200 or len(value) > 200:
        raise InvalidRequest("Search for at most 200 characters.", param="q" if len(text) > 200 else "value")
    return CallFilter(
        status=status,
        since=_day(query, "since"),
        until=None if (end := _day(query, "until")) is None else end + 86400,  # the whole last day
        field=(field, value) if field else None,
        text=text or None,
    )


def _day(query: dict[str, str], name: str) -> float | None:
    text = query.get(name, "").strip()
    if not text:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC).timestamp()
    except ValueError:
        raise InvalidRequest(f"{name}: a date such as 2026-11-30; got {text[:32]!r}.", param=name) from None


class CallPages:
    def __init__(self, pages: Pages, admin: AdminPages, archive: CallArchive | None) -> None:
        self.pages = pages
        self.admin = admin
        self.archive = archive

    def _archive(self) -> CallArchive:
        if self.archive is None:
            raise NotFound(
                "The calls explorer reads the call pipeline's store: set calls.database_url, or use `auth: keys`, "
                "whose database the pipeline shares by default."
            )
        return self.archive

    async def index(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        archive = self._archive()
        query = dict(visit.request.query)
        where = call_filter(query)
        browser = CallBrowser(archive.store)
        try:
            page = await browser.page(where, query.get("after") or None, PAGE_SIZE)
            # The charts sit under the first page; older pages are for reading on, and skip their queries.
            figures = None if query.get("after") else await browser.figures(where)
        except QueryError as exc:
            raise InvalidRequest(exc.message) from None
        kept = {name: query.get(name, "").strip() for name in _FILTERS}
        filters = "&".join(f"{name}={quote(value, safe='')}" for name, value in kept.items() if value)
        charts = (
            [
                ("calls-week", "Calls per week (week starting)", figures.per_week),
                ("calls-sentiment", "Sentiment", figures.sentiment),
                ("calls-products", "Products of interest", figures.products),
                ("calls-budget", "Budget", figures.budgets),
            ]
            if figures is not None
            else []
        )
        return visit.html(
            "calls.html",
            title="Calls",
            records=[_summary(record) for record in page.records],
            query=kept,
            statuses=STATUSES,
            fields=archive.fields,
            filters=filters,
            next_cursor=page.next_cursor,
            first_page=not query.get("after"),
            window_ended=page.window_ended,
            search_window=SEARCH_WINDOW,
            max_export=MAX_EXPORT,
            charts=[(slug, title, bar_chart(rows), rows) for slug, title, rows in charts if rows],
            figure_calls=figures.calls if figures is not None else 0,
        )

    async def export(self, visit: Visit, params: dict[str, str]) -> Html:
        self.admin.require(visit)
        archive = self._archive()
        kind = params["kind"]
        if kind not in _EXPORTS:
            raise NotFound("Export as calls.csv or calls.jsonl.")
        try:
            selection = await CallBrowser(archive.store).matching(call_filter(dict(visit.request.query)), MAX_EXPORT)
        except QueryError as exc:
            raise InvalidRequest(exc.message) from None
        out = io.StringIO()
        await asyncio.to_thread(write_export, selection.records, kind, out)  # 10,000 documents: not on the event loop
        # Cut at MAX_EXPORT: said where the person downloading sees it (the file's name, as the page says it will
        # be) and where a script does (a header), never as a line that would corrupt the CSV or JSON Lines.
        name = f"calls-newest-{MAX_EXPORT}.{kind}" if selection.truncated else f"calls.{kind}"
        headers = [*visit.headers(), (b"content-disposition", f'attachment; filename="{name}"'.encode())]
        if selection.truncated:
            headers.append((b"x-gateway-export-truncated", str(MAX_EXPORT).encode()))
        return Html(200, out.getvalue().encode("utf-8"), headers, no_store=True, content_type=_EXPORTS[kind])

    async def show(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        record = await self._record(params["call_id"])
        document = record.document or {}
        transcript = Transcript.from_transcription(record.transcription) if record.transcription else None
        return visit.html(
            "call.html",
            title=f"Call {record.id[:12]}",
            call=_summary(record),
            segments=[] if transcript is None else list(transcript.segments),
            transcript_text=document.get("transcript"),
            fields=[
                _field(name, value, (document.get("evidence") or {}).get(name))
                for name, value in (record.fields or {}).items()
            ],
            models=document.get("models") or {},
            usage=document.get("usage") or {},
            playable=self._archive().playback.configured,
            can_retry=record.status == FAILED,
        )

    async def retry(self, visit: Visit, params: dict[str, str]) -> Html:
        self.admin.require(visit)
        await visit.form()
        archive = self._archive()
        record = await self._record(params["call_id"])
        if record.status != FAILED:
            raise Conflict(f"Only a failed call can be retried; this one is {record.status}.")
        requeued = await archive.store.requeue_failed([record.id])
        if requeued and archive.settings.queue_url:  # workers take it from the task queue, as `calls retry` sends
            await asyncio.to_thread(_enqueue, archive.settings, record.source_uri)
        return visit.redirect(f"{self.pages.prefix}/admin/calls/{record.id}")

    async def _record(self, call_id: str) -> CallRecord:
        if not _CALL_ID.match(call_id):
            raise InvalidRequest("A call id is the SHA-256 of its audio: hexadecimal digits.", param="call_id")
        record = await self._archive().store.get(call_id)
        if record is None:
            raise NotFound(f"No call {call_id}.")
        return record

    async def audio(self, request: Request, send: Send, params: dict[str, str]) -> None:
        try:
            visit = await self.pages.visit(request)
            self.admin.require(visit)
            record = await self._record(params["call_id"])
            recording = await self._archive().playback.locate(record.source_uri)
        except GatewayError as exc:
            await send_error(send, exc, page_headers(no_store=True))
            return
        # The file located is the one served (its descriptor, opened once), and let go of however the answer ends.
        async with contextlib.aclosing(recording):
            try:
                start, end = _byte_range(request.headers.get("range"), recording.size)
            except GatewayError as exc:
                await send_error(send, exc, page_headers(no_store=True))
                return
            await _send_recording(send, recording, start, end, partial=request.headers.get("range") is not None)


async def _send_recording(send: Send, recording: Recording, start: int, end: int, *, partial: bool) -> None:
    length = end - start
    headers: RawHeaders = [
        (b"content-type", recording.content_type.encode()),
        (b"content-length", str(length).encode()),
        (b"accept-ranges", b"bytes"),
        (b"cache-control", b"private, no-cache"),
        *page_headers(),
    ]
    if partial:
        headers.append((b"content-range", f"bytes {start}-{end - 1}/{recording.size}".encode()))
    await send({"type": "http.response.start", "status": 206 if partial else 200, "headers": headers})
    # Closed at once if the player goes away mid-body (it does so on every seek): the file or blob download too.
    async with contextlib.aclosing(recording.read(start, length)) as chunks:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) of one `Range: bytes=...` (first-last, first-, -suffix); the whole file without one."""
    if header is None:
        return 0, size
    found = _RANGE.match(header.strip())
    if not found or not (found[1] or found[2]):  # several ranges, another unit: refused rather than guessed
        raise RangeNotSatisfiable(size)
    if not found[1]:  # the last N bytes
        return max(0, size - int(found[2])), size
    start = int(found[1])
    end = min(size, int(found[2]) + 1) if found[2] else size
    if start >= size or end <= start:
        raise RangeNotSatisfiable(size)
    return start, end


def _enqueue(calls: CallsSettings, uri: str) -> None:
    from ..calls.queue import open_queue  # Dramatiq loads only when a queue is configured

    queue = open_queue(calls)
    try:
        queue.send(uri)
    finally:
        queue.close()


def _summary(record: CallRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "name": record.name,
        "created": _when(record.created_at),
        "recorded": _when(record.recorded_at),
        "duration": None if record.duration_seconds is None else _clock(record.duration_seconds),
        "fields": record.fields or {},
        "error": record.error,
        "attempts": record.attempts,
        "tokens": record.prompt_tokens + record.completion_tokens,
    }


def _field(name: str, value: Any, evidence: Any) -> dict[str, Any]:
    notes = evidence if isinstance(evidence, list) else [evidence] if isinstance(evidence, dict) else []
    quotes = [
        {
            "quote": note.get("quote"),
            "start": note.get("start") if isinstance(note.get("start"), int | float) else None,
            "found": bool(note.get("found")),
            "reason": note.get("reason"),
        }
        for note in notes
        if isinstance(note, dict) and note.get("quote")
    ]
    return {"name": name, "value": _shown(value), "quotes": quotes}


def _shown(value: Any) -> str:
    if value is None:
        return "(not stated)"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "(none)"
    return str(value)


def _when(epoch: float | None) -> str:
    return "" if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def register_routes(router: Router, pages: Pages, calls: CallPages) -> None:
    base = f"{pages.prefix}/admin/calls"
    router.add(base, ["GET"], pages.reader(calls.index))
    router.add(f"{base}.{{kind}}", ["GET"], pages.reader(calls.export))
    router.add(f"{base}/{{call_id}}", ["GET"], pages.reader(calls.show))
    router.add(f"{base}/{{call_id}}/audio", ["GET"], pages.reader_route(calls.audio))
    router.add(f"{base}/{{call_id}}/retry", ["POST"], pages.handler(calls.retry))
