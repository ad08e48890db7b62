"""Key specifications as the admin API and the CLI accept them, validated once.

spec = KeyRequest.model_validate({"name": "ci", "models": ["gpt-4o"], "rpm": 60}).to_spec()
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..store.events import EventSpec
from ..store.keys import KeySpec, Limits


def parse_when(value: str) -> float:
    """ISO 8601 with a zone (`2026-12-01T18:00:00+01:00`, `...Z`) -> epoch seconds; a zone is required."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add one, e.g. {value}Z or {value}+01:00")
    return moment.timestamp()


class KeyUpdate(BaseModel):
    """A partial change of a key: only the fields present change (`null` removes a cap)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    models: list[str] | None = None
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    daily_requests: int | None = Field(None, ge=1)
    daily_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    budget_tokens: int | None = Field(None, ge=1)
    expires_at: float | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        return parse_when(value) if isinstance(value, str) else value

    def changes(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True)
        if "models" in changes and changes["models"] is not None:
            changes["models"] = tuple(changes["models"])
        return changes


class KeyRequest(KeyUpdate):
    """A new key: the same fields, with a name required."""

    name: str = Field(min_length=1, max_length=200)

    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.daily_requests, self.daily_tokens, self.max_tokens, self.budget_tokens)

    def to_spec(self, event_id: str | None = None) -> KeySpec:
        models = tuple(self.models) if self.models is not None else None
        return KeySpec(self.name, models, self.limits(), self.expires_at, event_id)


class EventRequest(BaseModel):
    """An event as organisers describe it; times without an offset are read in `timezone`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    starts_at: str
    ends_at: str
    timezone: str
    models: list[str] | None = None
    daily_requests: int | None = Field(None, ge=1)
    daily_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    shared_code: str | None = Field(None, min_length=4)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    def _epoch(self, value: str) -> float:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.timezone))
        return moment.timestamp()

    def to_spec(self) -> EventSpec:
        starts, ends = self._epoch(self.starts_at), self._epoch(self.ends_at)
        if ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        limits = Limits(daily_requests=self.daily_requests, daily_tokens=self.daily_tokens, max_tokens=self.max_tokens)
        models = tuple(self.models) if self.models is not None else None
        return EventSpec(self.name, starts, ends, self.timezone, models, limits, self.shared_code)


class Registration(BaseModel):
    """`POST /events/{id}/register`: a display name or an e-mail, and the shared code when the event has one."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)
    code: str | None = None

    def display(self) -> str:
        return self.name or self.email or "attendee"
