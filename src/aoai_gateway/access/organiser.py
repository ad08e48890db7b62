"""What an organiser does with events, for the admin API and the CLI alike: create, page, change, close, delete,
list and revoke attendees, and watch an event live.

    organiser = EventOrganiser(managed.events, managed.keys)
    made = await organiser.create(EventRequest.model_validate(body))      # made.shared_code: shown once
    page = await organiser.attendees("evt_ab12cd34", search="ann", limit=50, offset=0)
    changed = await organiser.update("evt_ab12cd34", EventUpdate(extend="2h"))
    await organiser.delete("evt_ab12cd34")                                 # every attendee key revoked

Every refusal is a `GatewayError` (404 for an id that does not exist, 400 naming the field), so the routes render
it as OpenAI's error JSON and the CLI prints its message in one line. Reads of pages go to the database's reader
threads (store/database.py) and use the indexes of migration 0007; attendees' usage comes from the rollups.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..labels import UNSAFE
from ..moments import check_moment, iso, parse_duration
from ..store.events import Event, EventStore
from ..store.keys import GatewayKey, KeyStore
from ..store.usage import recent_activity, usage_by_key
from .codes import GENERATE, generate_code, hash_code
from .quota import day_start
from .specs import EventRequest, EventUpdate, event_moment

MAX_SEARCH = 200
LIVE_MINUTES = (1, 180)  # the live view's window: a few hours of raw ledger rows at most
LIVE_TOP = (1, 100)
_CAP_FIELDS = ("daily_requests", "daily_tokens", "max_tokens")


@dataclass(frozen=True)
class Made:
    event: Event
    shared_code: str | None  # a generated code, the only time it exists in plain text


@dataclass(frozen=True)
class Attendee:
    key: GatewayKey
    usage: dict[str, int]  # requests, errors, tokens: ever
    today: dict[str, int]  # the same since midnight in the event's zone

    def public(self) -> dict[str, Any]:
        return {**self.key.public(), "usage": self.usage, "today": self.today}


@dataclass(frozen=True)
class AttendeePage:
    attendees: list[Attendee]
    total: int
    has_more: bool


class EventOrganiser:
    def __init__(
        self,
        events: EventStore,
        keys: KeyStore,
        flush: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.keys = keys
        self._flush = flush  # the ledger's: usage shown includes the rows still buffered in this process
        self._clock = clock

    async def create(self, request: EventRequest) -> Made:
        code = generate_code() if request.shared_code == GENERATE else request.shared_code
        try:
            spec = request.to_spec(await hash_code(code) if code else None)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="ends_at") from None
        event = await self.events.create(spec)
        return Made(event, code if request.shared_code == GENERATE else None)

    async def page(self, *, limit: int, offset: int) -> tuple[list[Event], bool]:
        """Events by start; True when more follow."""
        events = await self.events.page(limit=limit + 1, offset=offset)
        return events[:limit], len(events) > limit

    async def show(self, event_id: str) -> Event:
        event = await self.events.get(safe_id(event_id))
        if event is None:
            raise NotFound(f"No event {event_id!r}.", param="event_id")
        return event

    async def update(self, event_id: str, update: EventUpdate) -> Made:
        """Apply `update` to the event; 400 naming the field when the result would be invalid.

        `extend` counts from the end, or from now when the event has ended (it opens again for that long).
        """
        event = await self.show(event_id)
        fields = update.fields()
        zone = fields.get("timezone", event.timezone)
        starts, ends = self._window(event, fields, zone)
        limits = replace(event.limits, **{cap: fields[cap] for cap in _CAP_FIELDS if cap in fields})
        models = event.models
        if "models" in fields:
            models = tuple(fields["models"]) if fields["models"] is not None else None
        code_hash, code = event.code_hash, None
        if "shared_code" in fields:
            given = fields["shared_code"]
            code = generate_code() if given == GENERATE else given
            code_hash = await hash_code(code) if code else None
        updated = replace(
            event,
            name=fields.get("name", event.name),
            timezone=zone,
            starts_at=starts,
            ends_at=ends,
            models=models,
            limits=limits,
            code_hash=code_hash,
            max_attendees=fields.get("max_attendees", event.max_attendees),
        )
        changed = {name for name in ("name", "timezone", "models", "max_attendees", *_CAP_FIELDS) if name in fields}
        changed |= {"starts_at"} if starts != event.starts_at else set()
        changed |= {"ends_at"} if ends != event.ends_at else set()
        if "shared_code" in fields:
            changed.add("shared_code_hash")
        if not await self.events.save(updated, changed):
            raise NotFound(f"No event {event_id!r}.", param="event_id")
        self.keys.forget()  # attendee keys changed under the key store's cache
        return Made(updated, code if fields.get("shared_code") == GENERATE else None)

    def _window(self, event: Event, fields: dict[str, Any], zone: str) -> tuple[float, float]:
        """The start and end after `fields` (times, `extend`, `close`); 400 naming the field at fault."""
        starts, ends = event.starts_at, event.ends_at
        for name in ("starts_at", "ends_at"):
            if name in fields:
                try:
                    moment = event_moment(fields[name], zone)
                except ValueError as exc:
                    raise InvalidRequest(f"{name}: {exc}", param=name) from None
                starts, ends = (moment, ends) if name == "starts_at" else (starts, moment)
        now = self._clock()
        if "extend" in fields:
            if "ends_at" in fields:
                raise InvalidRequest("Give either ends_at or extend, not both.", param="extend")
            ends = max(ends, now) + parse_duration(fields["extend"])
            try:
                check_moment(ends)
            except ValueError as exc:
                raise InvalidRequest(f"extend: the new end {exc}", param="extend") from None
        if fields.get("close"):
            if "ends_at" in fields or "extend" in fields:
                raise InvalidRequest("close ends the event now: leave out ends_at and extend.", param="close")
            ends = min(ends, now)
            starts = min(starts, ends - 1)  # an event that has not started yet closes too
        if not ends > starts:
            param = "ends_at" if "ends_at" in fields else "starts_at"
            raise InvalidRequest("ends_at must be after starts_at.", param=param)
        return starts, ends

    async def close(self, event_id: str) -> Event:
        return (await self.update(event_id, EventUpdate(close=True))).event

    async def delete(self, event_id: str) -> None:
        """Hide the event and revoke every attendee key (their usage stays in the ledger)."""
        if not await self.events.delete(safe_id(event_id), self._clock()):
            raise NotFound(f"No event {event_id!r}.", param="event_id")
        self.keys.forget()

    async def attendees(self, event_id: str, *, search: str | None, limit: int, offset: int) -> AttendeePage:
        """One page of the event's attendees by registration, each with its usage, ever and today."""
        event = await self.show(event_id)
        if search is not None:
            search = search.strip()
            if len(search) > MAX_SEARCH or UNSAFE.search(search):
                raise InvalidRequest(f"search must be at most {MAX_SEARCH} printable characters.", param="search")
        keys, total = await self.keys.attendees(event.id, search=search or None, limit=limit, offset=offset)
        if self._flush is not None:
            await self._flush()
        ids = [key.id for key in keys]
        ever = await usage_by_key(self.keys.db, ids)
        today = await usage_by_key(self.keys.db, ids, day_start(self._clock(), event.zone))
        empty = {"requests": 0, "errors": 0, "tokens": 0}
        attendees = [Attendee(key, ever.get(key.id, empty), today.get(key.id, empty)) for key in keys]
        return AttendeePage(attendees, total, offset + len(keys) < total)

    async def revoke(self, event_id: str, key_id: str) -> GatewayKey:
        """Revoke one attendee's key; 404 unless the key belongs to the event."""
        event = await self.show(event_id)
        key = await self.keys.get(safe_id(key_id))
        if key is None or key.event_id != event.id:
            raise NotFound(f"No attendee {key_id!r} in event {event_id!r}.", param="key_id")
        await self.keys.revoke(key.id)
        return key

    async def live(self, event_id: str, *, minutes: int, top: int) -> dict[str, Any]:
        """The last `minutes` of the event: requests, errors and tokens per minute, totals, the `top` attendees."""
        event = await self.show(event_id)
        if self._flush is not None:
            await self._flush()
        now = self._clock()
        since = (now // 60 - minutes + 1) * 60  # whole minutes, the current one included
        per_minute, leaders = await recent_activity(
            self.keys.db, event_id=event.id, since=since, until=now + 1e-6, top=top
        )
        names = await self.keys.names([row["key_id"] for row in leaders])
        totals = {name: sum(row[name] for row in per_minute) for name in ("requests", "errors", "tokens")}
        return {
            "object": "event.live",
            "event_id": event.id,
            "since": iso(since).replace("+00:00", "Z"),
            "until": iso(now).replace("+00:00", "Z"),
            "minutes": minutes,
            **totals,
            "requests_per_minute": round(totals["requests"] / minutes, 3),
            "per_minute": per_minute,
            "top_attendees": [{**row, "name": names.get(row["key_id"])} for row in leaders],
            "attendees": event.attendees,
        }


def safe_id(value: str) -> str:
    """An id as stored ids look (`evt_...`, `key_...`): anything else cannot exist, and PostgreSQL cannot even
    compare text holding NUL; such ids are simply not found."""
    return value if len(value) <= 64 and "\x00" not in value else ""


__all__ = [
    "LIVE_MINUTES",
    "LIVE_TOP",
    "MAX_SEARCH",
    "Attendee",
    "AttendeePage",
    "EventOrganiser",
    "Made",
    "safe_id",
]
