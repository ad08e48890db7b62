"""Organiser pages for events (signed in), over the same service as the admin API (access/organiser.py).

    POST {prefix}/admin/events                                      the form -> the event's page (a generated
                                                                    shared code is shown there, once)
    GET  {prefix}/admin/events/{event_id}?q=ann&offset=50           details, the edit form, the actions, attendees
                                                                    (search by name or e-mail, 50 a page, usage
                                                                    today and ever)
    POST {prefix}/admin/events/{event_id}                           the edit form: name, dates, models, caps
    POST {prefix}/admin/events/{event_id}/extend                    by=1h|1d (from the end, or from now if ended)
    POST {prefix}/admin/events/{event_id}/close                     ends it now
    POST {prefix}/admin/events/{event_id}/code                      a new shared code, shown this once (no-store)
    GET  {prefix}/admin/events/{event_id}/delete                    the confirmation step; POST deletes
    POST {prefix}/admin/events/{event_id}/attendees/{key_id}/revoke
    GET  {prefix}/admin/events/{event_id}/live                      the last 15 minutes; static/live.js redraws it
    GET  {prefix}/admin/events/{event_id}/live.json                 from this (the organiser's live summary, the
                                                                    session's cookie; errors as OpenAI's JSON)

Every post checks the CSRF token and the session, then redirects back (POST-redirect-GET) with a fixed notice;
a refusal (`GatewayError` from the organiser: 400 naming the field, 404 for an unknown id) shows the event's page
again with the API's message and status. Creation validates exactly as `POST /admin/events` does
(`EventRequest`), edits as `PATCH /admin/events/{id}` does (`EventUpdate`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ValidationError

from ..access.codes import GENERATE
from ..access.organiser import MAX_SEARCH, AttendeePage, EventOrganiser
from ..access.specs import EventRequest, EventUpdate
from ..errors import GatewayError, InvalidRequest
from ..http.paths import Router
from ..store.events import Event
from .admin import AdminPages
from .charts import bar_chart
from .live import SharedSummaries, Summary
from .pages import Html, Pages, Visit

CAPS = ("daily_requests", "daily_tokens", "max_tokens", "max_attendees")
PAGE = 50
LIVE_MINUTES = 15
LIVE_TOP = 10
LIVE_REFRESH_SECONDS = 10
# How long viewers share one live summary (live.py): well within the page's poll period.
LIVE_SHARED_SECONDS = 5
EXTENSIONS = {"1h": "one hour", "1d": "one day"}
# What a redirect may announce: fixed texts chosen by the server, so a crafted link cannot put words on the page.
NOTICES = {
    "saved": "The event was saved.",
    "extended-1h": "The event was extended by one hour.",
    "extended-1d": "The event was extended by one day.",
    "closed": "The event was closed: attendee keys stop working now.",
    "revoked": "The attendee's key was revoked; it stops working on its next request.",
}
_OFFSET = re.compile(r"[0-9]{1,9}")
_M = TypeVar("_M", bound=BaseModel)
_JSON = b"application/json"


class EventPages:
    def __init__(self, pages: Pages, admin: AdminPages, models: list[str]) -> None:
        self.pages = pages
        self.admin = admin
        self.models = models
        self.live_summaries = SharedSummaries(LIVE_SHARED_SECONDS)

    def organiser(self) -> EventOrganiser:
        store = self.admin.store()
        return EventOrganiser(store.events, store.keys, store.ledger.flush)

    def _back(self, event_id: str, **query: str) -> str:
        shown = {k: v for k, v in query.items() if v}
        return f"{self.pages.prefix}/admin/events/{event_id}" + (f"?{urlencode(shown)}" if shown else "")

    async def create(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        fields = {k: v.strip() for k, v in form.items() if k != "csrf" and v.strip()}
        try:
            made = await self.organiser().create(_event_request(fields, self.models))
        except GatewayError as exc:
            shown = {k: v for k, v in fields.items() if k != "shared_code"}
            return await self.admin.home_page(visit, status=exc.status, error=exc, form=shown)
        return await self._page(visit, made.event, status=201, generated=made.shared_code)

    async def show(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        return await self._page(visit, await self.organiser().show(params["event_id"]))

    async def _page(
        self,
        visit: Visit,
        event: Event,
        status: int = 200,
        generated: str | None = None,
        error: GatewayError | None = None,
        form: dict[str, str] | None = None,
    ) -> Html:
        query = dict(visit.request.query)
        search = query.get("q", "").strip()[:MAX_SEARCH]
        offset = _offset(query.get("offset", "0"))
        page = await self.organiser().attendees(event.id, search=search or None, limit=PAGE, offset=offset)
        return visit.html(
            "event_admin.html",
            status,
            no_store=generated is not None,
            title=event.name,
            event=event,
            starts=event.local(event.starts_at),
            ends=event.local(event.ends_at),
            models=list(event.models) if event.models is not None else self.models,
            link=f"{visit.origin}{self.pages.prefix}/events/{event.id}",
            attendees=_attendees(event, page),
            total=page.total,
            offset=offset,
            page=PAGE,
            has_more=page.has_more,
            search=search,
            generated=generated,
            error=error,
            notice=NOTICES.get(query.get("done", "")),
            form=form if form is not None else _edit_form(event),
            served=self.models,
            extensions=EXTENSIONS,
        )

    async def _refused(self, visit: Visit, event_id: str, exc: GatewayError, form: dict[str, str] | None) -> Html:
        return await self._page(visit, await self.organiser().show(event_id), exc.status, error=exc, form=form)

    async def edit(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        event = await self.organiser().show(params["event_id"])
        fields = {k: v.strip() for k, v in form.items() if k != "csrf"}
        try:
            await self.organiser().update(event.id, _event_update(fields, event, self.models))
        except GatewayError as exc:
            return await self._refused(visit, event.id, exc, fields)
        return visit.redirect(self._back(event.id, done="saved"))

    async def extend(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        event = await self.organiser().show(params["event_id"])
        by = form.get("by", "")
        try:
            if by not in EXTENSIONS:
                raise InvalidRequest(f"by: extend by {' or '.join(EXTENSIONS)}.", param="by")
            await self.organiser().update(event.id, EventUpdate(extend=by))
        except GatewayError as exc:
            return await self._refused(visit, event.id, exc, None)
        return visit.redirect(self._back(event.id, done=f"extended-{by}"))

    async def close(self, visit: Visit, params: dict[str, str]) -> Html:
        await visit.form()
        self.admin.require(visit)
        event = await self.organiser().show(params["event_id"])
        try:
            await self.organiser().close(event.id)
        except GatewayError as exc:
            return await self._refused(visit, event.id, exc, None)
        return visit.redirect(self._back(event.id, done="closed"))

    async def rotate_code(self, visit: Visit, params: dict[str, str]) -> Html:
        """A new generated shared code: shown on this answer only (not redirected: the code exists nowhere else)."""
        await visit.form()
        self.admin.require(visit)
        made = await self.organiser().update(params["event_id"], EventUpdate(shared_code=GENERATE))
        return await self._page(visit, made.event, generated=made.shared_code)

    async def confirm_delete(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        event = await self.organiser().show(params["event_id"])
        return visit.html("event_delete.html", title=f"Delete {event.name}", event=event)

    async def delete(self, visit: Visit, params: dict[str, str]) -> Html:
        await visit.form()
        self.admin.require(visit)
        await self.organiser().delete(params["event_id"])
        return visit.redirect(f"{self.pages.prefix}/admin")

    async def revoke(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        event = await self.organiser().show(params["event_id"])
        await self.organiser().revoke(event.id, params["key_id"])
        search = form.get("q", "").strip()[:MAX_SEARCH]
        offset = form.get("offset", "")
        return visit.redirect(
            self._back(event.id, q=search, offset=offset if _OFFSET.fullmatch(offset) else "", done="revoked")
        )

    async def live(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        organiser = self.organiser()
        event = await organiser.show(params["event_id"])
        summary = await self._live(event.id)
        minutes = [(row["minute"][11:16], row) for row in summary["per_minute"]]
        return visit.html(
            "event_live.html",
            title=f"{event.name}: live",
            event=event,
            live=summary,
            minutes=minutes,
            chart=bar_chart([(label, row["requests"]) for label, row in minutes]),
            leaders=summary["top_attendees"],
            refresh=LIVE_REFRESH_SECONDS,
            shared=LIVE_SHARED_SECONDS,
        )

    async def _live(self, event_id: str) -> Summary:
        """The event's live summary, shared with whoever else watches it (at most `LIVE_SHARED_SECONDS` old)."""
        organiser = self.organiser()
        return await self.live_summaries.get(
            (event_id, LIVE_MINUTES, LIVE_TOP),
            lambda: organiser.live(event_id, minutes=LIVE_MINUTES, top=LIVE_TOP),
        )

    async def live_json(self, visit: Visit, params: dict[str, str]) -> Html:
        """The live summary for the page's script: the admin API's `GET /admin/events/{id}/live` answer."""
        try:
            self.admin.require(visit)
            summary = await self._live(params["event_id"])
        except GatewayError as exc:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            return Html(exc.status, exc.body(), [*visit.headers(), *headers], True, _JSON)
        return Html(200, orjson.dumps(summary), visit.headers(), True, _JSON)


def _offset(value: str) -> int:
    if not _OFFSET.fullmatch(value):
        raise InvalidRequest(f"offset must be a whole number; got {value[:40]!r}.", param="offset")
    return int(value)


def _attendees(event: Event, page: AttendeePage) -> list[dict[str, Any]]:
    return [
        {
            "id": attendee.key.id,
            "name": attendee.key.name,
            "status": "revoked" if attendee.key.revoked_at is not None else "active",
            "registered": event.local(attendee.key.created_at),
            "today": attendee.today,
            "ever": attendee.usage,
        }
        for attendee in page.attendees
    ]


def _wall_input(epoch: float, event: Event) -> str:
    """`2026-12-01T18:00` in the event's zone: what a `datetime-local` input shows and sends back."""
    return dt.datetime.fromtimestamp(epoch, event.zone).strftime("%Y-%m-%dT%H:%M")


def _edit_form(event: Event) -> dict[str, str]:
    form = {
        "name": event.name,
        "timezone": event.timezone,
        "starts_at": _wall_input(event.starts_at, event),
        "ends_at": _wall_input(event.ends_at, event),
        "models": ", ".join(event.models) if event.models is not None else "",
        "max_attendees": str(event.max_attendees or ""),
    }
    for cap in CAPS[:3]:
        value = getattr(event.limits, cap)
        form[cap] = str(value) if value is not None else ""
    return form


def _models(value: str, served: list[str]) -> list[str]:
    models = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in models if m not in served]
    if unknown:
        raise InvalidRequest(
            f"models: this gateway serves no {', '.join(unknown)}; it serves {', '.join(served) or 'none'}.",
            param="models",
        )
    return models


def _cap(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 16):
        raise InvalidRequest(f"{name}: a whole number, or empty for no cap.", param=name)
    return int(value)


def _event_update(fields: dict[str, str], event: Event, served: list[str]) -> EventUpdate:
    """The edit form as a PATCH: times sent unchanged are left alone (the form shows minutes, the event may hold
    seconds); an empty cap or model list removes it, as `null` does in the API.

    A new time zone keeps the wall-clock times the form shows (18:00 stays 18:00, now in the new zone): the usual
    reason to change it is an event created in the wrong zone."""
    current = _edit_form(event)
    data: dict[str, Any] = {}
    if "name" in fields:
        data["name"] = fields["name"]
    rezoned = bool(fields.get("timezone")) and fields["timezone"] != event.timezone
    if rezoned:
        data["timezone"] = fields["timezone"]
    for name in ("starts_at", "ends_at"):
        if fields.get(name) and (rezoned or fields[name] != current[name]):
            data[name] = fields[name]
    if "models" in fields:
        data["models"] = _models(fields["models"], served) or None
    for cap in CAPS:
        if cap in fields:
            data[cap] = _cap(cap, fields[cap]) if fields[cap] else None
    return _validated(EventUpdate, data)


def _validated(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def _event_request(fields: dict[str, str], served: list[str]) -> EventRequest:
    data: dict[str, Any] = {k: fields.get(k, "") for k in ("name", "starts_at", "ends_at")}
    data["timezone"] = fields.get("timezone", "UTC")
    if "models" in fields:
        data["models"] = _models(fields["models"], served)
    for cap in CAPS:
        if cap in fields:
            data[cap] = _cap(cap, fields[cap])
    if fields.get("generate_code") == "on":
        data["shared_code"] = GENERATE
    elif "shared_code" in fields:
        data["shared_code"] = fields["shared_code"]
    return _validated(EventRequest, data)


def register_routes(router: Router, pages: Pages, events: EventPages) -> None:
    prefix = pages.prefix
    base = f"{prefix}/admin/events/{{event_id}}"
    show, edit = pages.reader(events.show), pages.handler(events.edit)
    confirm, delete = pages.handler(events.confirm_delete), pages.handler(events.delete)
    router.add(f"{prefix}/admin/events", ["POST"], pages.handler(events.create))
    router.add(base, ["GET", "POST"], lambda r, s, p: (edit if r.method == "POST" else show)(r, s, p))
    router.add(f"{base}/extend", ["POST"], pages.handler(events.extend))
    router.add(f"{base}/close", ["POST"], pages.handler(events.close))
    router.add(f"{base}/code", ["POST"], pages.handler(events.rotate_code))
    router.add(f"{base}/delete", ["GET", "POST"], lambda r, s, p: (delete if r.method == "POST" else confirm)(r, s, p))
    router.add(f"{base}/attendees/{{key_id}}/revoke", ["POST"], pages.handler(events.revoke))
    router.add(f"{base}/live", ["GET"], pages.reader(events.live))
    router.add(f"{base}/live.json", ["GET"], pages.reader(events.live_json))
