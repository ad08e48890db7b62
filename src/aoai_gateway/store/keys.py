"""Gateway keys: stored as SHA-256 hashes only, shown once, recognisable by their `sk-gw-` prefix.

keys = KeyStore(db)
key, secret = await keys.create(KeySpec(name="ci", models=("gpt-4o",), rpm=60))
await keys.by_secret(secret)      # -> GatewayKey, or None
await keys.revoke(key.id)
await keys.enrol(KeySpec("Ann", event_id="evt_1"), "email:ann@example.com")   # None if already there
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import orjson

from ..labels import normalised_name
from .cache import ReadCache
from .database import Database, Row

SECRET_PREFIX = "sk-gw-"


@dataclass(frozen=True)
class Limits:
    """Caps of one key or event attendee; None means no cap."""

    rpm: int | None = None
    tpm: int | None = None
    daily_requests: int | None = None
    daily_tokens: int | None = None
    max_tokens: int | None = None
    budget_tokens: int | None = None


@dataclass(frozen=True)
class KeySpec:
    name: str
    models: tuple[str, ...] | None = None
    limits: Limits = field(default_factory=Limits)
    expires_at: float | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class GatewayKey:
    id: str
    name: str
    prefix: str
    models: tuple[str, ...] | None
    limits: Limits
    expires_at: float | None
    revoked_at: float | None
    event_id: str | None
    created_at: float

    def public(self) -> dict[str, Any]:
        """What listings show: never the secret or its hash."""
        data = asdict(self)
        data.update(data.pop("limits"))
        data["models"] = list(self.models) if self.models is not None else None
        return data


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_LIMIT_COLUMNS = [f.name for f in fields(Limits)]
_COLUMNS = "id, name, prefix, models, " + ", ".join(_LIMIT_COLUMNS) + ", expires_at, revoked_at, event_id, created_at"


def _key(row: Row) -> GatewayKey:
    models = orjson.loads(row["models"]) if row["models"] is not None else None
    return GatewayKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        models=tuple(models) if models is not None else None,
        limits=Limits(**{name: row[name] for name in _LIMIT_COLUMNS}),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        event_id=row["event_id"],
        created_at=row["created_at"],
    )


class KeyStore:
    """Keys by secret are cached (`ReadCache`): until the next commit on SQLite, `cache_seconds` on PostgreSQL,
    and served as last read for `outage_seconds` while the database cannot be reached."""

    def __init__(self, db: Database, cache_seconds: float = 5.0, outage_seconds: float = 60.0) -> None:
        self.db = db
        self._cache: ReadCache[GatewayKey | None] = ReadCache(db, cache_seconds, outage_seconds)

    async def create(self, spec: KeySpec) -> tuple[GatewayKey, str]:
        """A new key and its secret; the secret exists only in this return value."""
        key, secret = self._new(spec)
        await self.db.execute(
            f"INSERT INTO keys ({_COLUMNS}, secret_hash) VALUES ({', '.join('?' * (_COLUMNS.count(',') + 2))})",
            [*self._values(key), hash_secret(secret)],
        )
        return key, secret

    async def enrol(self, spec: KeySpec, attendee: str) -> tuple[GatewayKey, str] | None:
        """An event attendee's key, or None when the event already has `attendee` (a normalised e-mail or name).

        The unique index on (event_id, attendee) decides, so of two concurrent registrations only one wins.
        """
        assert spec.event_id is not None
        key, secret = self._new(spec)
        placeholders = ", ".join("?" * (_COLUMNS.count(",") + 3))
        changed = await self.db.execute(
            f"INSERT INTO keys ({_COLUMNS}, secret_hash, attendee) VALUES ({placeholders})"
            " ON CONFLICT (event_id, attendee) DO NOTHING",
            [*self._values(key), hash_secret(secret), attendee],
        )
        return (key, secret) if changed > 0 else None

    async def has_attendee(self, event_id: str, attendee: str) -> bool:
        rows = await self.db.fetch("SELECT id FROM keys WHERE event_id = ? AND attendee = ?", [event_id, attendee])
        return bool(rows)

    @staticmethod
    def _new(spec: KeySpec) -> tuple[GatewayKey, str]:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key = GatewayKey(
            id="key_" + secrets.token_hex(4),
            name=spec.name,
            prefix=secret[: len(SECRET_PREFIX) + 4],
            models=spec.models,
            limits=spec.limits,
            expires_at=spec.expires_at,
            revoked_at=None,
            event_id=spec.event_id,
            created_at=time.time(),
        )
        return key, secret

    @staticmethod
    def _values(key: GatewayKey) -> list[Any]:
        models = orjson.dumps(list(key.models)).decode() if key.models is not None else None
        limits = [getattr(key.limits, name) for name in _LIMIT_COLUMNS]
        return [
            key.id,
            key.name,
            key.prefix,
            models,
            *limits,
            key.expires_at,
            key.revoked_at,
            key.event_id,
            key.created_at,
        ]

    async def by_secret(self, secret: str) -> GatewayKey | None:
        digest = hash_secret(secret)
        return await self._cache.get(digest, lambda: self._by_digest(digest))

    async def _by_digest(self, digest: str) -> GatewayKey | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS}, secret_hash FROM keys WHERE secret_hash = ?", [digest])
        # The lookup is by hash; compare once more in constant time so no code path compares secrets naively.
        if not rows or not hmac.compare_digest(rows[0]["secret_hash"], digest):
            return None
        return _key(rows[0])

    async def get(self, key_id: str) -> GatewayKey | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM keys WHERE id = ?", [key_id])
        return _key(rows[0]) if rows else None

    async def list(self, event_id: str | None = None, include_revoked: bool = True) -> list[GatewayKey]:
        sql = f"SELECT {_COLUMNS} FROM keys"
        conditions, params = [], []
        if event_id is not None:
            conditions.append("event_id = ?")
            params.append(event_id)
        if not include_revoked:
            conditions.append("revoked_at IS NULL")
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        return [_key(row) for row in await self.db.fetch(sql + " ORDER BY created_at", params)]

    async def newest(self, *, limit: int, offset: int = 0) -> tuple[builtins.list[GatewayKey], int]:
        """One page of every key, newest first (index `keys_created`), and how many keys there are in all."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM keys ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", [limit, offset]
        )
        total = await self.db.fetch("SELECT COUNT(*) AS n FROM keys")
        return [_key(row) for row in rows], int(total[0]["n"])

    async def attendees(
        self, event_id: str, *, search: str | None = None, limit: int, offset: int = 0
    ) -> tuple[builtins.list[GatewayKey], int]:
        """One page of an event's keys by registration (index `keys_event_created`), and how many match in all.

        `search` matches part of the name or of the attendee identity (the e-mail, or the normalised name), in any
        case; `%`, `_` and `\\` in it are literal.
        """
        where, params = "event_id = ?", [event_id]
        if search:
            pattern = "%" + _like_escaped(search.casefold()) + "%"
            where += " AND (lower(name) LIKE ? ESCAPE '\\' OR attendee LIKE ? ESCAPE '\\')"
            params += [pattern, "%" + _like_escaped(normalised_name(search)) + "%"]
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM keys WHERE {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        total = await self.db.fetch(f"SELECT COUNT(*) AS n FROM keys WHERE {where}", params)
        return [_key(row) for row in rows], int(total[0]["n"])

    async def names(self, key_ids: Sequence[str]) -> dict[str, str]:
        """Key id -> name, for the ids that exist."""
        if not key_ids:
            return {}
        rows = await self.db.fetch(
            f"SELECT id, name FROM keys WHERE id IN ({', '.join('?' * len(key_ids))})", list(key_ids)
        )
        return {row["id"]: row["name"] for row in rows}

    def forget(self) -> None:
        """Drop cached keys: another store changed key rows (an event's attendees) in this process."""
        self._cache.clear()

    async def update(self, key_id: str, **changes: Any) -> GatewayKey | None:
        """Change name, models, expires_at or any limit; None when there is no such key."""
        key = await self.get(key_id)
        if key is None:
            return None
        limit_changes = {k: changes.pop(k) for k in list(changes) if k in _LIMIT_COLUMNS}
        updated = replace(key, limits=replace(key.limits, **limit_changes), **changes)
        columns = ["name", "models", *_LIMIT_COLUMNS, "expires_at"]
        values = dict(zip(_COLUMNS.split(", "), self._values(updated), strict=True))
        await self.db.execute(
            f"UPDATE keys SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            [*(values[c] for c in columns), key_id],
        )
        self._cache.clear()
        return updated

    async def revoke(self, key_id: str) -> bool:
        changed = await self.db.execute(
            "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [time.time(), key_id]
        )
        self._cache.clear()
        return changed > 0
