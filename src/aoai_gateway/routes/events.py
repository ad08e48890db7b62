"""Events for workshops and hackathons: organisers (master key) create them; attendees register for a key.

    POST   /admin/events                                {"name", "starts_at", "ends_at", "timezone", "models",
                                                         "daily_requests", "daily_tokens", "max_tokens",
                                                         "max_attendees", "shared_code"}   ("generate": shown once)
    GET    /admin/events                                GET /admin/events/{id}/attendees
    DELETE /admin/events/{id}/attendees/{key_id}        revoke one attendee
    POST   /events/{id}/register                        {"name" | "email", "code"}  -> 201 with the attendee's key
Usage per attendee or per model: GET /admin/usage?event={id}&by=key|model.
What makes registration safe to leave open (one key per attendee, per-address limits, code lock-out, the opening
time, `max_attendees`) lives in `access.registration`.
"""

from __future__ import annotations

import orjson

from ..access.codes import GENERATE, generate_code, hash_code
from ..access.registration import Registrar
from ..access.runtime import ManagedAccess
from ..access.specs import EventRequest, Registration
from ..config import AdminSettings
from ..errors import InvalidRequest, NotFound
from ..http.asgi import Send
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_json
from .admin import require_master_key
from .keys_admin import KeysDisabled, validated

_SMALL_BODY = 64 * 1024


def add_event_routes(router: Router, settings: AdminSettings, managed: ManagedAccess | None) -> None:
    def access() -> ManagedAccess:
        found = managed
        if found is None:
            raise KeysDisabled("Events need `auth: keys` in the configuration.")
        return found

    def organiser(request: Request) -> ManagedAccess:
        require_master_key(request, settings)
        return access()

    async def create(request: Request, send: Send, params: dict[str, str]) -> None:
        store = organiser(request)
        spec_request = validated(EventRequest, await request.body(_SMALL_BODY))
        code = generate_code() if spec_request.shared_code == GENERATE else spec_request.shared_code
        try:
            spec = spec_request.to_spec(await hash_code(code) if code else None)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="ends_at") from None
        event = await store.events.create(spec)
        body = event.public()
        if spec_request.shared_code == GENERATE:
            body["shared_code"] = code  # the only time it is shown
        await send_json(send, 201, orjson.dumps(body))

    async def listing(request: Request, send: Send, params: dict[str, str]) -> None:
        events = await organiser(request).events.list()
        await send_json(send, 200, orjson.dumps({"object": "list", "data": [e.public() for e in events]}))

    async def attendees(request: Request, send: Send, params: dict[str, str]) -> None:
        store = organiser(request)
        if await store.events.get(params["event_id"]) is None:
            raise NotFound(f"No event {params['event_id']!r}.")
        keys = await store.keys.list(event_id=params["event_id"])
        await send_json(send, 200, orjson.dumps({"object": "list", "data": [k.public() for k in keys]}))

    async def revoke(request: Request, send: Send, params: dict[str, str]) -> None:
        store = organiser(request)
        key = await store.keys.get(params["key_id"])
        if key is None or key.event_id != params["event_id"]:
            raise NotFound(f"No attendee {params['key_id']!r} in event {params['event_id']!r}.")
        await store.keys.revoke(key.id)
        await send_json(send, 200, orjson.dumps({"id": key.id, "revoked": True}))

    async def register(request: Request, send: Send, params: dict[str, str]) -> None:
        store = access()
        form = validated(Registration, await request.body(_SMALL_BODY))
        registrar = Registrar(store.events, store.keys, store.limiter, store.control.settings)
        client = request.scope.get("client")
        done = await registrar.register(params["event_id"], form, client[0] if client else None)
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
    router.add("/admin/events/{event_id}/attendees", ["GET"], attendees)
    router.add("/admin/events/{event_id}/attendees/{key_id}", ["DELETE"], revoke)
    router.add("/events/{event_id}/register", ["POST"], register)
