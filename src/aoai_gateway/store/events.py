"""Events, the hackathon model: a time window in an explicit zone, granted models, per-attendee caps.

events = EventStore(db)
event = await events.create(EventSpec("Hack Day", starts_at, ends_at, "Europe/Berlin", ("gpt-4o",),
                                      Limits(daily_requests=200, daily_tokens=100_000, max_tokens=1000)))
event.window_error(now)      # None inside the window, else what to tell the attendee
await events.take_seat(event.id)   # False when max_attendees are registered; one UPDATE, so never overshot
page = await events.page(limit=50, offset=0)            # 51 rows at most: the 51st says another page follows
await events.save(replace(event, ends_at=later), {"ends_at"})   # its attendees' keys follow, same transaction
await events.delete(event.id)      # hidden from now on, every attendee key revoked, usage rows kept

What an attendee key may do is copied from its event at registration (models, daily caps, `max_tokens`, expiry
at `ends_at`); `save` copies the changed ones onto every key of the event, so an organiser's change reaches the
attendees already registered (a cap an admin set on one attendee's key is overwritten by the event's).

Shared codes arrive here already hashed (`access.codes`): the store never sees a plain code.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..moments import iso, wall, zone_or_utc
from .cache import ReadCache
from .database import Database, Row
from .keys import Limits


@dataclass(frozen=True)
class EventSpec:
    name: str
    starts_at: float
    ends_at: float
    timezone: str
    models: tuple[str, ...] | None
    limits: Limits
    code_hash: str | None = None
    max_attendees: int | None = None


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    starts_at: float
    ends_at: float
    timezone: str
    models: tuple[str, ...] | None
    limits: Limits
    code_hash: str | None
    created_at: float
    max_attendees: int | None = None
    attendees: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.timezone)

    def local(self, epoch: float) -> str:
        return wall(epoch, self.zone, self.timezone)

    def window_error(self, now: float) -> str | None:
        # Written as `not now >= ...` so a NaN stored by another database closes the window instead of opening it.
        if not now >= self.starts_at:
            return f"The event {self.name!r} opens at {self.local(self.starts_at)}; this key works from then."
        if not now < self.ends_at:
            return f"The event {self.name!r} ended at {self.local(self.ends_at)}."
        return None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "starts_at": iso(self.starts_at, self.zone),
            "ends_at": iso(self.ends_at, self.zone),
            "timezone": self.timezone,
            "models": list(self.models) if self.models is not None else None,
            "daily_requests": self.limits.daily_requests,
            "daily_tokens": self.limits.daily_tokens,
            "max_tokens": self.limits.max_tokens,
            "needs_code": self.code_hash is not None,
            "max_attendees": self.max_attendees,
            "attendees": self.attendees,
        }


_COLUMNS = (
    "id, name, starts_at, ends_at, timezone, models, daily_requests, daily_tokens, max_tokens, "
    "shared_code_hash, created_at, max_attendees, attendees"
)
_LIVE = "deleted_at IS NULL"
# Event fields -> the attendee-key column that copies them, and how the event's value becomes the key's.
_KEY_COPIES: dict[str, tuple[str, Callable[[Event], Any]]] = {
    "ends_at": ("expires_at", lambda e: e.ends_at),
    "models": ("models", lambda e: _models_json(e.models)),
    "daily_requests": ("daily_requests", lambda e: e.limits.daily_requests),
    "daily_tokens": ("daily_tokens", lambda e: e.limits.daily_tokens),
    "max_tokens": ("max_tokens", lambda e: e.limits.max_tokens),
}
# Event fields -> how `save` writes them.
_EVENT_COLUMNS: dict[str, Callable[[Event], Any]] = {
    "name": lambda e: e.name,
    "starts_at": lambda e: e.starts_at,
    "ends_at": lambda e: e.ends_at,
    "timezone": lambda e: e.timezone,
    "models": lambda e: _models_json(e.models),
    "daily_requests": lambda e: e.limits.daily_requests,
    "daily_tokens": lambda e: e.limits.daily_tokens,
    "max_tokens": lambda e: e.limits.max_tokens,
    "max_attendees": lambda e: e.max_attendees,
    "shared_code_hash": lambda e: e.code_hash,
}


def _models_json(models: tuple[str, ...] | None) -> str | None:
    return orjson.dumps(list(models)).decode() if models is not None else None


def _event(row: Row) -> Event:
    models = orjson.loads(row["models"]) if row["models"] is not None else None
    return Event(
        id=row["id"],
        name=row["name"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        timezone=row["timezone"],
        models=tuple(models) if models is not None else None,
        limits=Limits(
            daily_requests=row["daily_requests"], daily_tokens=row["daily_tokens"], max_tokens=row["max_tokens"]
        ),
        code_hash=row["shared_code_hash"],
        created_at=row["created_at"],
        max_attendees=row["max_attendees"],
        attendees=row["attendees"] or 0,
    )


class EventStore:
    def __init__(self, db: Database, cache_seconds: float = 5.0, outage_seconds: float = 60.0) -> None:
        self.db = db
        # Every request of an attendee key reads its event: cached as keys are (store/cache.py).
        self._cache: ReadCache[Event | None] = ReadCache(db, cache_seconds, outage_seconds)

    async def create(self, spec: EventSpec) -> Event:
        ZoneInfo(spec.timezone)  # an unknown zone fails here, before anything is stored
        if spec.ends_at <= spec.starts_at:
            raise ValueError("an event must end after it starts")
        event = Event(
            "evt_" + secrets.token_hex(4),
            spec.name,
            spec.starts_at,
            spec.ends_at,
            spec.timezone,
            spec.models,
            spec.limits,
            spec.code_hash,
            time.time(),
            spec.max_attendees,
        )
        models = _models_json(event.models)
        await self.db.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                event.id,
                event.name,
                event.starts_at,
                event.ends_at,
                event.timezone,
                models,
                event.limits.daily_requests,
                event.limits.daily_tokens,
                event.limits.max_tokens,
                event.code_hash,
                event.created_at,
                event.max_attendees,
                0,
            ],
        )
        return event

    async def get(self, event_id: str) -> Event | None:
        return await self._cache.get(event_id, lambda: self._read(event_id))

    async def _read(self, event_id: str) -> Event | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM events WHERE id = ? AND {_LIVE}", [event_id])
        return _event(rows[0]) if rows else None

    async def list(self) -> list[Event]:
        """Every event not deleted, by start (small deployments, tests); pages use `page`."""
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM events WHERE {_LIVE} ORDER BY starts_at, id")
        return [_event(row) for row in rows]

    async def page(self, *, limit: int, offset: int = 0) -> builtins.list[Event]:
        """At most `limit` events not deleted, by start then id, after skipping `offset` (index `events_starts`)."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE {_LIVE} ORDER BY starts_at, id LIMIT ? OFFSET ?", [limit, offset]
        )
        return [_event(row) for row in rows]

    async def names(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Event id -> name, for the ids that exist (deleted events too: their usage still names them)."""
        if not event_ids:
            return {}
        marks = ", ".join("?" * len(event_ids))
        rows = await self.db.fetch(f"SELECT id, name FROM events WHERE id IN ({marks})", list(event_ids))
        return {row["id"]: row["name"] for row in rows}

    async def save(self, event: Event, changed: Iterable[str]) -> bool:
        """Write the `changed` fields of `event` (names of `_EVENT_COLUMNS`), and copy those its attendee keys
        hold onto every key of the event, in one transaction; False when the event is gone (deleted meanwhile)."""
        names = [name for name in _EVENT_COLUMNS if name in set(changed)]
        if not names:
            return await self._read(event.id) is not None
        event_sql = (
            f"UPDATE events SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ? AND {_LIVE}",
            [[*(_EVENT_COLUMNS[name](event) for name in names), event.id]],
        )
        copies = [_KEY_COPIES[name] for name in names if name in _KEY_COPIES]
        batches: list[tuple[str, list[list[Any]]]] = [event_sql]
        if copies:
            assignments = ", ".join(f"{column} = ?" for column, _ in copies)
            batches.append(
                (
                    f"UPDATE keys SET {assignments} WHERE event_id = ?",
                    [[*(read(event) for _, read in copies), event.id]],
                )
            )
        if await self._read(event.id) is None:
            return False
        await self.db.execute_batches(batches)
        self._cache.clear()
        return True

    async def delete(self, event_id: str, now: float | None = None) -> bool:
        """Hide the event and revoke every key of it, in one transaction; False when there is no such event.

        The row stays: usage reports and revoked keys still name it, and an id is never handed out twice.
        """
        if await self._read(event_id) is None:
            return False
        when = time.time() if now is None else now
        await self.db.execute_batches(
            [
                (f"UPDATE events SET deleted_at = ? WHERE id = ? AND {_LIVE}", [[when, event_id]]),
                ("UPDATE keys SET revoked_at = ? WHERE event_id = ? AND revoked_at IS NULL", [[when, event_id]]),
            ]
        )
        self._cache.clear()
        return True

    async def take_seat(self, event_id: str) -> bool:
        """Count one more attendee unless the event is full: one conditional UPDATE, atomic on either database."""
        changed = await self.db.execute(
            "UPDATE events SET attendees = attendees + 1"
            " WHERE id = ? AND (max_attendees IS NULL OR attendees < max_attendees)",
            [event_id],
        )
        return changed > 0

    async def release_seat(self, event_id: str) -> None:
        """Give back a seat whose registration lost the race for its identity."""
        await self.db.execute("UPDATE events SET attendees = attendees - 1 WHERE id = ? AND attendees > 0", [event_id])

    async def store_code_hash(self, event_id: str, code_hash: str) -> None:
        """Replace a legacy SHA-256 code hash with its scrypt form (the plain code is only known at a match)."""
        await self.db.execute("UPDATE events SET shared_code_hash = ? WHERE id = ?", [code_hash, event_id])
        self._cache.clear()
