"""Organiser pages for events (signed in): create one, see its attendees and their usage, revoke an attendee.

    POST {prefix}/admin/events                                      the form -> the event's page (a generated
                                                                    shared code is shown there, once)
    GET  {prefix}/admin/events/{event_id}?q=ann                     details, the registration link, attendees
    POST {prefix}/admin/events/{event_id}/attendees/{key_id}/revoke

Creation validates exactly as `POST /admin/events` does (`EventRequest`): times without an offset are read in the
event's zone, a shared code needs 8 characters (or the gateway makes one), models must be ones this gateway serves.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ..access.codes import GENERATE, generate_code, hash_code
from ..access.specs import EventRequest
from ..errors import GatewayError, InvalidRequest, NotFound
from ..http.paths import Router
from ..store import usage_report
from ..store.events import Event
from .admin import AdminPages
from .pages import Html, Pages, Visit

CAPS = ("daily_requests", "daily_tokens", "max_tokens", "max_attendees")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SHOWN = 500


class EventPages:
    def __init__(self, pages: Pages, admin: AdminPages, models: list[str]) -> None:
        self.pages = pages
        self.admin = admin
        self.models = models

    async def _event(self, event_id: str) -> Event:
        event = await self.admin.store().events.get(event_id) if _ID.fullmatch(event_id) else None
        if event is None:
            raise NotFound(f"No event {event_id!r}.")
        return event

    async def create(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        fields = {k: v.strip() for k, v in form.items() if k != "csrf" and v.strip()}
        try:
            request = _event_request(fields, self.models)
            code = generate_code() if request.shared_code == GENERATE else request.shared_code
            try:
                spec = request.to_spec(await hash_code(code) if code else None)
            except ValueError as exc:
                raise InvalidRequest(str(exc), param="ends_at") from None
        except GatewayError as exc:
            shown = {k: v for k, v in fields.items() if k != "shared_code"}
            return await self.admin.home_page(visit, status=exc.status, error=exc, form=shown)
        event = await self.admin.store().events.create(spec)
        generated = code if request.shared_code == GENERATE else None
        return await self._page(visit, event, status=201, generated=generated)

    async def show(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        return await self._page(visit, await self._event(params["event_id"]))

    async def _page(self, visit: Visit, event: Event, status: int = 200, generated: str | None = None) -> Html:
        store = self.admin.store()
        search = dict(visit.request.query).get("q", "").strip()[:200]
        keys = await store.keys.list(event_id=event.id)
        if search:
            keys = [key for key in keys if search.casefold() in key.name.casefold()]
        await store.ledger.flush()
        usage = {row["key"]: row for row in await usage_report(store.db, by="key", event_id=event.id)}
        attendees = [
            {
                "id": key.id,
                "name": key.name,
                "status": "revoked" if key.revoked_at is not None else "active",
                "registered": event.local(key.created_at),
                "requests": usage.get(key.id, {}).get("requests", 0),
                "errors": usage.get(key.id, {}).get("errors", 0),
                "tokens": sum(usage.get(key.id, {}).get(c, 0) for c in ("prompt_tokens", "completion_tokens")),
            }
            for key in keys[:MAX_SHOWN]
        ]
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
            attendees=attendees,
            total=len(keys),
            search=search,
            generated=generated,
        )

    async def revoke(self, visit: Visit, params: dict[str, str]) -> Html:
        await visit.form()
        self.admin.require(visit)
        store = self.admin.store()
        event = await self._event(params["event_id"])
        key = await store.keys.get(params["key_id"]) if _ID.fullmatch(params["key_id"]) else None
        if key is None or key.event_id != event.id:
            raise NotFound(f"No attendee {params['key_id']!r} in event {event.id!r}.")
        await store.keys.revoke(key.id)
        return visit.redirect(f"{self.pages.prefix}/admin/events/{event.id}")


def _event_request(fields: dict[str, str], served: list[str]) -> EventRequest:
    data: dict[str, Any] = {k: fields.get(k, "") for k in ("name", "starts_at", "ends_at")}
    data["timezone"] = fields.get("timezone", "UTC")
    if "models" in fields:
        models = [m.strip() for m in fields["models"].split(",") if m.strip()]
        unknown = [m for m in models if m not in served]
        if unknown:
            raise InvalidRequest(
                f"models: this gateway serves no {', '.join(unknown)}; it serves {', '.join(served) or 'none'}.",
                param="models",
            )
        data["models"] = models
    for cap in CAPS:
        if cap in fields:
            if not (fields[cap].isascii() and fields[cap].isdigit() and len(fields[cap]) <= 16):
                raise InvalidRequest(f"{cap}: a whole number, or empty for no cap.", param=cap)
            data[cap] = int(fields[cap])
    if fields.get("generate_code") == "on":
        data["shared_code"] = GENERATE
    elif "shared_code" in fields:
        data["shared_code"] = fields["shared_code"]
    try:
        return EventRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def register_routes(router: Router, pages: Pages, events: EventPages) -> None:
    prefix = pages.prefix
    router.add(f"{prefix}/admin/events", ["POST"], pages.handler(events.create))
    router.add(f"{prefix}/admin/events/{{event_id}}", ["GET"], pages.handler(events.show))
    router.add(
        f"{prefix}/admin/events/{{event_id}}/attendees/{{key_id}}/revoke", ["POST"], pages.handler(events.revoke)
    )
