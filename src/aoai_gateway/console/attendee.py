"""Attendee pages (public, phone-sized first): an event's landing page and registration, the key shown once
with quick-start snippets, and "my usage" for a pasted key.

    GET  {prefix}/events/{event_id}            name, dates in the event's zone, models, whether a code is needed
    POST {prefix}/events/{event_id}/register   the form -> the key page (shown once, never cached)
    GET  {prefix}/usage                        a form for the key (posted, so it never lands in a URL or log)
    POST {prefix}/usage                        the key's usage today and in all, and what remains of each cap

Registration goes through the same `Registrar` as `POST /events/{id}/register`, so every rule holds here too:
per-address limits, the opening window, the shared code's lock-out, one key per attendee (409), `max_attendees`.
A refusal shows the form again with the reason and the API's status code.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..access.quota import day_start
from ..access.registration import Registrar
from ..access.runtime import ManagedAccess
from ..access.specs import Registration
from ..errors import AuthenticationError, GatewayError, InvalidRequest, NotFound
from ..http.paths import Router
from ..moments import UTC
from ..store import usage_report
from ..store.events import Event
from ..store.keys import GatewayKey
from ..store.usage import key_totals
from .pages import Html, Pages, Visit
from .qr import registration_qr
from .snippets import quick_starts

_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class EventView:
    """What the landing page shows of an event."""

    id: str
    name: str
    starts: str
    ends: str
    timezone: str
    models: list[str]
    needs_code: bool
    state: str  # "open", "upcoming" (registration not open yet) or "ended"


class AttendeePages:
    def __init__(
        self, pages: Pages, managed: ManagedAccess | None, models: list[str], api_base: str, registration_days: float
    ) -> None:
        self.pages = pages
        self.managed = managed
        self.models = models
        self.api_base = api_base
        self.registration_days = registration_days

    def _access(self) -> ManagedAccess:
        if self.managed is None:
            raise NotFound("Events need `auth: keys` in the gateway's configuration.")
        return self.managed

    async def _event(self, event_id: str) -> Event:
        store = self._access()
        # Ids are the store's own (`evt_` and hex): anything else is no event, and never reaches the database
        # (PostgreSQL cannot even compare text holding NUL).
        event = await store.events.get(event_id) if _EVENT_ID.fullmatch(event_id) else None
        if event is None:
            raise NotFound(f"No event {event_id!r}: check the link the organiser gave you.")
        return event

    def _view(self, event: Event) -> EventView:
        now = time.time()
        opens = event.starts_at - self.registration_days * 86400
        state = "ended" if not now < event.ends_at else ("upcoming" if not now >= opens else "open")
        models = list(event.models) if event.models is not None else self.models
        return EventView(
            event.id,
            event.name,
            event.local(event.starts_at),
            event.local(event.ends_at),
            event.timezone,
            models,
            event.code_hash is not None,
            state,
        )

    async def landing(self, visit: Visit, params: dict[str, str]) -> Html:
        event = await self._event(params["event_id"])
        return visit.html("event.html", title=event.name, event=self._view(event), form={}, error=None)

    async def qr(self, visit: Visit, params: dict[str, str]) -> Html:
        event = await self._event(params["event_id"])
        return registration_qr(visit, self.pages.prefix, event.id)

    async def register(self, visit: Visit, params: dict[str, str]) -> Html:
        event = await self._event(params["event_id"])
        form = await visit.form()
        fields = {name: form[name].strip() for name in ("name", "email", "code") if form.get(name, "").strip()}
        view = self._view(event)
        try:
            registration = _registration(fields)
            store = self._access()
            registrar = Registrar(store.events, store.keys, store.limiter, store.control.settings)
            done = await registrar.register(event.id, registration, visit.address)
        except GatewayError as exc:
            shown = {k: v for k, v in fields.items() if k != "code"}
            page = visit.html("event.html", exc.status, title=event.name, event=view, form=shown, error=exc)
            page.headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            return page
        model = view.models[0] if view.models else "gpt-4o"
        base_url = visit.origin + self.api_base
        return visit.html(
            "registered.html",
            no_store=True,
            title=f"Your key for {event.name}",
            event=view,
            secret=done.secret,
            key_id=done.key.id,
            snippets=quick_starts(base_url, model),
            base_url=base_url,
        )

    async def usage_form(self, visit: Visit, params: dict[str, str]) -> Html:
        self._access()
        return visit.html("usage.html", title="My usage", error=None, report=None)

    async def usage(self, visit: Visit, params: dict[str, str]) -> Html:
        store = self._access()
        form = await visit.form()
        secret = form.get("key", "").strip()
        key = await store.keys.by_secret(secret) if secret else None
        if key is None:
            error = AuthenticationError("No key matches what you pasted; check it and try again.")
            return visit.html("usage.html", 401, no_store=True, title="My usage", error=error, report=None)
        report = await self._report(store, key)
        return visit.html("usage.html", no_store=True, title="My usage", error=None, report=report)

    async def _report(self, store: ManagedAccess, key: GatewayKey) -> dict[str, Any]:
        event = await store.events.get(key.event_id) if key.event_id is not None else None
        zone = event.zone if event is not None else UTC
        now = time.time()
        await store.ledger.flush()  # this process's last second of requests counts too
        day_requests, day_tokens, tokens = await key_totals(store.db, key.id, day_start(now, zone))
        limits = key.limits
        caps = [
            _cap("Requests today", day_requests, limits.daily_requests),
            _cap("Tokens today", day_tokens, limits.daily_tokens),
            _cap("Tokens in all (budget)", tokens, limits.budget_tokens),
            _cap("Requests per minute", None, limits.rpm),
            _cap("Tokens per minute", None, limits.tpm),
            _cap("Tokens per request", None, limits.max_tokens),
        ]
        status = "active"
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and now >= key.expires_at:
            status = "expired"
        return {
            "name": key.name,
            "id": key.id,
            "status": status,
            "event": event.name if event is not None else None,
            "zone": event.timezone if event is not None else "UTC",
            "valid_until": event.local(event.ends_at) if event is not None else None,
            "models": list(key.models) if key.models is not None else self.models,
            "caps": [cap for cap in caps if cap["limit"] is not None],
            "by_model": await usage_report(store.db, by="model", key_id=key.id, limit=100),
        }


def _cap(label: str, used: int | None, limit: int | None) -> dict[str, Any]:
    remaining = None if used is None or limit is None else max(0, limit - used)
    return {"label": label, "used": used, "limit": limit, "remaining": remaining}


def _registration(fields: dict[str, str]) -> Registration:
    try:
        return Registration.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def register_routes(router: Router, pages: Pages, attendee: AttendeePages) -> None:
    prefix = pages.prefix
    router.add(f"{prefix}/events/{{event_id}}", ["GET"], pages.handler(attendee.landing))
    router.add(f"{prefix}/events/{{event_id}}/register", ["POST"], pages.handler(attendee.register))
    router.add(f"{prefix}/events/{{event_id}}/qr.svg", ["GET"], pages.handler(attendee.qr))
    usage_form, usage = pages.handler(attendee.usage_form), pages.handler(attendee.usage)
    router.add(
        f"{prefix}/usage", ["GET", "POST"], lambda r, s, p: (usage if r.method == "POST" else usage_form)(r, s, p)
    )
