"""Events for workshops and hackathons: organisers (master key) create and steer them; attendees register.

    POST   /admin/events                         {"name", "starts_at", "ends_at", "timezone", "models",
                                                  "daily_requests", "daily_tokens", "max_tokens", "max_attendees",
                                                  "shared_code"}   ("generate": shown once)
    GET    /admin/events?limit=100&offset=0      by start; `has_more` when another page follows
    GET    /admin/events/{id}
    PATCH  /admin/events/{id}                    any of the above, `null` removing a cap, the models or the code;
                                                  {"extend": "2h"}; {"close": true} ends it now
    DELETE /admin/events/{id}                    hidden from then on; every attendee key revoked
    GET    /admin/events/{id}/attendees?search=ann&limit=50&offset=0   each with its usage, ever and today
    POST   /admin/events/{id}/attendees/{key_id}/revoke      (also DELETE /admin/events/{id}/attendees/{key_id})
    GET    /admin/events/{id}/live?minutes=15&top=10         requests, errors, tokens per minute; top attendees
    GET    /events/{id}/register                 public: what a client needs to register
    POST   /events/{id}/register                 {"name" | "email", "code"}  -> 201 with the attendee's key
Usage per attendee or per model: GET /admin/usage?event={id}&by=key|model. The work is `access.organiser`;
what makes registration safe to leave open lives in `access.registration`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..access.organiser import LIVE_MINUTES, LIVE_TOP, EventOrganiser, Made, safe_id
from ..access.registration import Registrar
from ..access.runtime import ManagedAccess
from ..access.specs import EventRequest, EventUpdate, Registration
from ..config import AdminSettings
from ..errors import NotFound
from ..http.asgi import Send
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_json
from .admin import require_master_key
from .keys_admin import MAX_OFFSET, KeysDisabled, bounded_int, validated

_SMALL_BODY = 64 * 1024


def add_event_routes(router: Router, settings: AdminSettings, managed: ManagedAccess | None) -> None:
    def access() -> ManagedAccess:
        found = managed
        if found is None:
            raise KeysDisabled("Events need `auth: keys` in the configuration.")
        return found

    def organiser(request: Request) -> EventOrganiser:
        require_master_key(request, settings)
        store = access()
        return EventOrganiser(store.events, store.keys, store.ledger.flush)

    async def create(request: Request, send: Send, params: dict[str, str]) -> None:
        steer = organiser(request)
        made = await steer.create(validated(EventRequest, await request.body(_SMALL_BODY)))
        await send_json(send, 201, orjson.dumps(_shown(made)))

    async def listing(request: Request, send: Send, params: dict[str, str]) -> None:
        steer = organiser(request)
        query = dict(request.query)
        limit = bounded_int(query, "limit", 1, MAX_EVENTS_PAGE, DEFAULT_PAGE)
        offset = bounded_int(query, "offset", 0, MAX_OFFSET, 0)
        events, more = await steer.page(limit=limit, offset=offset)
        body = {"object": "list", "data": [e.public() for e in events], "has_more": more}
        await send_json(send, 200, orjson.dumps(body))

    async def show(request: Request, send: Send, params: dict[str, str]) -> None:
        event = await organiser(request).show(params["event_id"])
        await send_json(send, 200, orjson.dumps(event.public()))

    async def update(request: Request, send: Send, params: dict[str, str]) -> None:
        steer = organiser(request)
        changes = validated(EventUpdate, await request.body(_SMALL_BODY))
        made = await steer.update(params["event_id"], changes)
        await send_json(send, 200, orjson.dumps(_shown(made)))

    async def delete(request: Request, send: Send, params: dict[str, str]) -> None:
        await organiser(request).delete(params["event_id"])
        await send_json(send, 200, orjson.dumps({"id": params["event_id"], "deleted": True}))

    async def attendees(request: Request, send: Send, params: dict[str, str]) -> None:
        steer = organiser(request)
        query = dict(request.query)
        limit = bounded_int(query, "limit", 1, MAX_ATTENDEES_PAGE, DEFAULT_PAGE)
        offset = bounded_int(query, "offset", 0, MAX_OFFSET, 0)
        page = await steer.attendees(params["event_id"], search=query.get("search"), limit=limit, offset=offset)
        body = {
            "object": "list",
            "data": [a.public() for a in page.attendees],
            "total": page.total,
            "has_more": page.has_more,
        }
        await send_json(send, 200, orjson.dumps(body))

    async def revoke(request: Request, send: Send, params: dict[str, str]) -> None:
        key = await organiser(request).revoke(params["event_id"], params["key_id"])
        await send_json(send, 200, orjson.dumps({"id": key.id, "revoked": True}))

    async def live(request: Request, send: Send, params: dict[str, str]) -> None:
        steer = organiser(request)
        query = dict(request.query)
        minutes = bounded_int(query, "minutes", *LIVE_MINUTES, 15)
        top = bounded_int(query, "top", *LIVE_TOP, 10)
        await send_json(send, 200, orjson.dumps(await steer.live(params["event_id"], minutes=minutes, top=top)))

    def registrar() -> Registrar:
        store = access()
        return Registrar(store.events, store.keys, store.limiter, store.control.settings)

    async def describe(request: Request, send: Send, params: dict[str, str]) -> None:
        event = await access().events.get(safe_id(params["event_id"]))
        if event is None:
            raise NotFound(f"No event {params['event_id']!r}.")
        await send_json(send, 200, orjson.dumps(registrar().describe(event)))

    async def register(request: Request, send: Send, params: dict[str, str]) -> None:
        form = validated(Registration, await request.body(_SMALL_BODY))
        client = request.scope.get("client")
        done = await registrar().register(safe_id(params["event_id"]), form, client[0] if client else None)
        event = done.event.public()
        body = {
            "key": done.secret,
            "key_id": done.key.id,
            "event": event,
            "valid_from": event["starts_at"],
            "valid_until": event["ends_at"],
        }
        await send_json(send, 201, orjson.dumps(body))

    router.add("/admin/events", ["GET", "POST"], lambda r, s, p: (create if r.method == "POST" else listing)(r, s, p))
    router.add(
        "/admin/events/{event_id}",
        ["GET", "PATCH", "DELETE"],
        lambda r, s, p: {"GET": show, "PATCH": update, "DELETE": delete}[r.method](r, s, p),
    )
    router.add("/admin/events/{event_id}/attendees", ["GET"], attendees)
    router.add("/admin/events/{event_id}/attendees/{key_id}", ["DELETE"], revoke)
    router.add("/admin/events/{event_id}/attendees/{key_id}/revoke", ["POST"], revoke)
    router.add("/admin/events/{event_id}/live", ["GET"], live)
    router.add(
        "/events/{event_id}/register",
        ["GET", "POST"],
        lambda r, s, p: (register if r.method == "POST" else describe)(r, s, p),
    )


DEFAULT_PAGE = 100
MAX_EVENTS_PAGE = 1000
MAX_ATTENDEES_PAGE = 1000


def _shown(made: Made) -> dict[str, Any]:
    body = made.event.public()
    if made.shared_code is not None:
        body["shared_code"] = made.shared_code  # the only time it is shown
    return body
