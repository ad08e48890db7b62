"""Events, the hackathon model: a time window in an explicit zone, granted models, per-attendee caps.

events = EventStore(db)
event = await events.create(EventSpec("Hack Day", starts_at, ends_at, "Europe/Berlin", ("gpt-4o",),
                                      Limits(daily_requests=200, daily_tokens=100_000, max_tokens=1000)))
event.window_error(now)      # None inside the window, else what to tell the attendee
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

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
    shared_code: str | None = None


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

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, self.zone).strftime(f"%Y-%m-%d %H:%M ({self.timezone})")

    def window_error(self, now: float) -> str | None:
        if now < self.starts_at:
            return f"The event {self.name!r} opens at {self.local(self.starts_at)}; this key works from then."
        if now >= self.ends_at:
            return f"The event {self.name!r} ended at {self.local(self.ends_at)}."
        return None

    def code_matches(self, code: str | None) -> bool:
        if self.code_hash is None:
            return True
        given = hashlib.sha256((code or "").encode()).hexdigest()
        return hmac.compare_digest(given, self.code_hash)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "starts_at": dt.datetime.fromtimestamp(self.starts_at, self.zone).isoformat(),
            "ends_at": dt.datetime.fromtimestamp(self.ends_at, self.zone).isoformat(),
            "timezone": self.timezone,
            "models": list(self.models) if self.models is not None else None,
            "daily_requests": self.limits.daily_requests,
            "daily_tokens": self.limits.daily_tokens,
            "max_tokens": self.limits.max_tokens,
            "needs_code": self.code_hash is not None,
        }


_COLUMNS = (
    "id, name, starts_at, ends_at, timezone, models, daily_requests, daily_tokens, max_tokens, "
    "shared_code_hash, created_at"
)


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
    )


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, spec: EventSpec) -> Event:
        ZoneInfo(spec.timezone)  # an unknown zone fails here, before anything is stored
        if spec.ends_at <= spec.starts_at:
            raise ValueError("an event must end after it starts")
        code_hash = hashlib.sha256(spec.shared_code.encode()).hexdigest() if spec.shared_code else None
        event = Event(
            "evt_" + secrets.token_hex(4),
            spec.name,
            spec.starts_at,
            spec.ends_at,
            spec.timezone,
            spec.models,
            spec.limits,
            code_hash,
            time.time(),
        )
        models = orjson.dumps(list(event.models)).decode() if event.models is not None else None
        await self.db.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                code_hash,
                event.created_at,
            ],
        )
        return event

    async def get(self, event_id: str) -> Event | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM events WHERE id = ?", [event_id])
        return _event(rows[0]) if rows else None

    async def list(self) -> list[Event]:
        return [_event(row) for row in await self.db.fetch(f"SELECT {_COLUMNS} FROM events ORDER BY starts_at")]
