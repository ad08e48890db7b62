"""Event self-registration that cannot be farmed: one key per attendee, bounded per event and per address.

    registrar = Registrar(managed.events, managed.keys, managed.limiter, settings.access)
    done = await registrar.register("evt_ab12cd34", Registration(email="ann@example.com"), address="203.0.113.7")
    done.secret                                   # the attendee's key, shown once

The checks, cheapest first:
1. registrations per client address and hour (`access.registrations_per_address`, 429 with Retry-After);
2. the event exists, has not ended (403 `event_closed`), and registration is open: from
   `access.registration_opens_days` before it starts (403 `registration_not_open`);
3. the shared code, if the event has one: each guess is counted against the address before it is checked
   (`access.code_failures_per_address` per 15 minutes, then 429 until the quarter-hour ends); a right code is
   refunded, so attendees behind one NAT do not lock each other out. Concurrent guesses count too;
4. one key per attendee (the e-mail, else the normalised name): 409 `already_registered`. A read answers the common
   case; the unique index on (event_id, attendee) decides races, so two concurrent registrations never both win;
5. `max_attendees`: a seat is taken by one conditional UPDATE (403 `event_full`) and given back if step 4's insert
   loses its race.

Limits count in the shared `Limiter` (memory, or Redis so replicas agree). Addresses are the socket's peer
(`scope["client"]`); IPv6 counts per /64, which one attacker usually holds whole.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import AccessSettings
from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied, RateLimited
from ..moments import iso
from ..store.events import Event, EventStore
from ..store.keys import GatewayKey, KeySpec, KeyStore
from .codes import code_matches, hash_code, is_legacy
from .limiter import Check, Limiter
from .specs import Registration

REGISTRATION_WINDOW = 3600
CODE_WINDOW = 900


@dataclass(frozen=True)
class Registered:
    event: Event
    key: GatewayKey
    secret: str


def address_bucket(address: str | None) -> str:
    """What one client is, for counting: the IPv4 address, or the IPv6 /64 it lies in."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Registrar:
    def __init__(
        self,
        events: EventStore,
        keys: KeyStore,
        limiter: Limiter,
        settings: AccessSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.keys = keys
        self.limiter = limiter
        self.settings = settings
        self._clock = clock

    async def register(self, event_id: str, form: Registration, address: str | None) -> Registered:
        now = self._clock()
        client = address_bucket(address)
        await self._admit(f"register:{client}", self.settings.registrations_per_address, REGISTRATION_WINDOW, now)
        event = await self.events.get(event_id)
        if event is None:
            raise NotFound(f"No event {event_id!r}.")
        self._check_open(event, now)
        attendee = form.attendee()
        if attendee is None:
            raise InvalidRequest("Register with a display name or an e-mail address.", param="name")
        if event.code_hash is not None:
            await self._check_code(event, event.code_hash, form.code, client, now)
        if await self.keys.has_attendee(event.id, attendee):
            raise _already(form)
        if not await self.events.take_seat(event.id):
            raise PermissionDenied(
                f"The event {event.name!r} is full: all {event.max_attendees} places are taken.", code="event_full"
            )
        spec = KeySpec(form.display(), event.models, event.limits, event.ends_at, event.id)
        made = await self.keys.enrol(spec, attendee)
        if made is None:
            await self.events.release_seat(event.id)
            raise _already(form)
        return Registered(event, *made)

    def describe(self, event: Event) -> dict[str, Any]:
        """What a client needs to register for `event` (`GET /events/{id}/register`): nothing an attendee could not
        learn by trying, no code and no attendee."""
        now = self._clock()
        opens = event.starts_at - self.settings.registration_opens_days * 86400
        if not now < event.ends_at:
            state = "closed"
        elif not now >= opens:
            state = "not_open"
        elif event.max_attendees is not None and event.attendees >= event.max_attendees:
            state = "full"
        else:
            state = "open"
        public = event.public()
        return {
            "object": "event.registration",
            "event": {
                name: public[name]
                for name in (
                    "id",
                    "name",
                    "starts_at",
                    "ends_at",
                    "timezone",
                    "models",
                    "daily_requests",
                    "daily_tokens",
                    "max_tokens",
                )
            },
            "registration": state,
            "opens_at": iso(opens, event.zone),
            "needs_code": event.code_hash is not None,
            "method": "POST",
            "fields": {
                "name": "your display name (or give email)",
                "email": "your e-mail address (or give name); one key per attendee",
                **({"code": "the event's shared code, from the organiser"} if event.code_hash is not None else {}),
            },
        }

    def _check_open(self, event: Event, now: float) -> None:
        if not now < event.ends_at:
            raise PermissionDenied(
                f"The event {event.name!r} ended at {event.local(event.ends_at)}.", code="event_closed"
            )
        opens = event.starts_at - self.settings.registration_opens_days * 86400
        if not now >= opens:
            raise PermissionDenied(
                f"Registration for {event.name!r} opens at {event.local(opens)}, "
                f"{self.settings.registration_opens_days:g} days before the event starts.",
                code="registration_not_open",
            )

    async def _check_code(self, event: Event, stored: str, code: str | None, client: str, now: float) -> None:
        counter = await self._admit(f"code:{client}", self.settings.code_failures_per_address, CODE_WINDOW, now)
        if not code or not await code_matches(stored, code):
            raise PermissionDenied("This event needs its shared code to register.", param="code", code="bad_code")
        await self.limiter.adjust([(counter, -1, CODE_WINDOW + 60)])
        if is_legacy(stored):
            await self.events.store_code_hash(event.id, await hash_code(code))

    async def _admit(self, subject: str, limit: int, window: int, now: float) -> str:
        """Count one attempt in the fixed window around `now`; 429 with Retry-After when none is left."""
        start = int(now // window) * window
        counter = f"{subject}:{start}"
        refusal = await self.limiter.admit([Check(counter, limit, 1, window + 60)])
        if refusal is not None:
            retry = start + window - now
            what = "wrong shared codes" if subject.startswith("code:") else "registrations"
            raise RateLimited(
                f"Too many {what} from this address ({limit} per {window // 60} minutes); "
                f"retry after {max(1, round(retry))} seconds.",
                "requests",
                retry,
                {},
            )
        return counter


def _already(form: Registration) -> Conflict:
    who = f"the e-mail {form.email!r}" if form.email is not None else f"the name {form.name!r}"
    return Conflict(
        f"Someone already registered for this event with {who}; each attendee gets one key. "
        "Ask the organiser if you lost yours.",
        param="email" if form.email is not None else "name",
        code="already_registered",
    )


__all__ = ["CODE_WINDOW", "REGISTRATION_WINDOW", "Registered", "Registrar", "address_bucket"]
