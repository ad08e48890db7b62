"""Key, event and registration requests as the admin API, the CLI and attendees send them, validated once.

spec = KeyRequest.model_validate({"name": "ci", "models": ["gpt-4o"], "rpm": 60}).to_spec()

Everything a person typed is bounded here, so the store only ever holds what every reader can show: names free of
control characters (`labels.clean_label`), instants in 2000..2200 (`moments.check_moment`), caps in 1..2**53-1
(exact in a double, in JSON and in every database).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..labels import clean_label, normalised_name
from ..moments import UTC, check_moment, parse_duration
from ..store.events import EventSpec
from ..store.keys import KeySpec, Limits
from .codes import GENERATE, MIN_LENGTH

MAX_CAP = 2**53 - 1
Label = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_label)]
ModelName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_label)]
Models = Annotated[list[ModelName], Field(max_length=256)]
Cap = Annotated[int, Field(ge=1, le=MAX_CAP)]
_EMAIL = re.compile(r"^[^@\s]{1,64}@(?:[^@\s.]+\.)+[^@\s.]+$")


def parse_when(value: str) -> float:
    """ISO 8601 with a zone (`2026-12-01T18:00:00+01:00`, `...Z`) -> epoch seconds; a zone is required."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add one, e.g. {value}Z or {value}+01:00")
    try:
        return moment.timestamp()
    except (OverflowError, OSError):
        raise ValueError(f"{value!r} is outside the range of dates this gateway handles") from None


class KeyUpdate(BaseModel):
    """A partial change of a key: only the fields present change (`null` removes a cap)."""

    model_config = ConfigDict(extra="forbid")

    name: Label | None = None
    models: Models | None = None
    rpm: Cap | None = None
    tpm: Cap | None = None
    daily_requests: Cap | None = None
    daily_tokens: Cap | None = None
    max_tokens: Cap | None = None
    budget_tokens: Cap | None = None
    expires_at: float | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        return parse_when(value) if isinstance(value, str) else value

    @field_validator("expires_at")
    @classmethod
    def _bounded(cls, value: float | None) -> float | None:
        return None if value is None else check_moment(value)

    def changes(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True)
        if "models" in changes and changes["models"] is not None:
            changes["models"] = tuple(changes["models"])
        return changes


class KeyRequest(KeyUpdate):
    """A new key: the same fields, with a name required."""

    name: Label

    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.daily_requests, self.daily_tokens, self.max_tokens, self.budget_tokens)

    def to_spec(self, event_id: str | None = None) -> KeySpec:
        models = tuple(self.models) if self.models is not None else None
        return KeySpec(self.name, models, self.limits(), self.expires_at, event_id)


class EventRequest(BaseModel):
    """An event as organisers describe it; times without an offset are read in `timezone`.

    `shared_code` is at least 8 characters, or `"generate"` for a gateway-made one (shown once, in the answer).
    """

    model_config = ConfigDict(extra="forbid")

    # Declared before the times: their validators read it.
    timezone: str = Field(max_length=64)
    name: Label
    starts_at: str = Field(max_length=64)
    ends_at: str = Field(max_length=64)
    models: Models | None = None
    daily_requests: Cap | None = None
    daily_tokens: Cap | None = None
    max_tokens: Cap | None = None
    max_attendees: Cap | None = None
    shared_code: str | None = Field(None, max_length=200)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _moment(cls, value: str, info: ValidationInfo) -> str:
        event_moment(value, info.data.get("timezone", "UTC"))
        return value

    @field_validator("shared_code")
    @classmethod
    def _strong(cls, value: str | None) -> str | None:
        return _strong_code(value)

    def to_spec(self, code_hash: str | None = None) -> EventSpec:
        starts, ends = _epoch(self.starts_at, self.timezone), _epoch(self.ends_at, self.timezone)
        if ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        limits = Limits(daily_requests=self.daily_requests, daily_tokens=self.daily_tokens, max_tokens=self.max_tokens)
        models = tuple(self.models) if self.models is not None else None
        return EventSpec(self.name, starts, ends, self.timezone, models, limits, code_hash, self.max_attendees)


class EventUpdate(BaseModel):
    """`PATCH /admin/events/{id}`: only the fields present change; `null` removes a cap, the model allowlist or
    the shared code. Times without an offset are read in `timezone` if given, else in the event's own zone.

    `extend` moves the end later by a duration (`"2h"`, `"1d"`); `close: true` ends the event now. Changes of the
    end, the models and the caps reach the keys of attendees already registered (`EventStore.save`).
    """

    model_config = ConfigDict(extra="forbid")

    name: Label | None = None
    timezone: str | None = Field(None, max_length=64)
    starts_at: str | None = Field(None, max_length=64)
    ends_at: str | None = Field(None, max_length=64)
    models: Models | None = None
    daily_requests: Cap | None = None
    daily_tokens: Cap | None = None
    max_tokens: Cap | None = None
    max_attendees: Cap | None = None
    shared_code: str | None = Field(None, max_length=200)
    extend: str | None = Field(None, max_length=32)
    close: bool | None = None

    @field_validator("name", "timezone", "starts_at", "ends_at", "extend", "close")
    @classmethod
    def _present(cls, value: Any) -> Any:
        if value is None:  # what `null` would remove is required: refuse it rather than guess
            raise ValueError("may not be null")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("shared_code")
    @classmethod
    def _strong(cls, value: str | None) -> str | None:
        return _strong_code(value)

    @field_validator("extend")
    @classmethod
    def _duration(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not 60 <= seconds <= MAX_EXTENSION:
            raise ValueError("must be from 1m to 365d")
        return value

    @field_validator("close")
    @classmethod
    def _only_true(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("only `true` (end the event now) is meaningful")
        return value

    def fields(self) -> dict[str, Any]:
        """The fields the request named, as sent."""
        return self.model_dump(exclude_unset=True)


MAX_EXTENSION = 365 * 86400


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
    return value


def _strong_code(value: str | None) -> str | None:
    if value is None or value == GENERATE:
        return value
    clean_label(value)
    if len(value) < MIN_LENGTH:
        raise ValueError(f'needs at least {MIN_LENGTH} characters, or "{GENERATE}" to have the gateway make one')
    return value


def event_moment(value: str, timezone: str) -> float:
    """An event's start or end as epoch seconds, read in `timezone` without an offset; ValueError when it lies
    outside 2000..2200 or cannot be shown in that zone."""
    epoch = check_moment(_epoch(value, timezone))
    try:  # representable in the event's own zone too, where every message and listing shows it
        dt.datetime.fromtimestamp(epoch, ZoneInfo(timezone))
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{value!r} cannot be shown in {timezone}") from None
    return epoch


def _epoch(value: str, timezone: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(timezone) if timezone != "UTC" else UTC)
        return moment.timestamp()
    except (OverflowError, OSError):
        raise ValueError(f"{value!r} is outside the range of dates this gateway handles") from None


def _email(value: str) -> str:
    value = value.lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("is not an e-mail address such as ann@example.com")
    return value


class Registration(BaseModel):
    """`POST /events/{id}/register`: a display name or an e-mail, and the shared code when the event has one."""

    model_config = ConfigDict(extra="forbid")

    name: Label | None = None
    email: Annotated[str, Field(max_length=320), AfterValidator(clean_label), AfterValidator(_email)] | None = None
    code: str | None = Field(None, max_length=200)

    def display(self) -> str:
        return self.name or self.email or "attendee"

    def attendee(self) -> str | None:
        """Who this is, for the one-key-per-attendee rule: the e-mail when given, else the normalised name."""
        if self.email is not None:
            return "email:" + self.email
        return "name:" + normalised_name(self.name) if self.name is not None else None
