"""The call documents: one row per recording, keyed by the hash of its audio, with leases for safe sharing.

    store = CallStore(db, owner="host:1234:ab12", lease_seconds=120)
    state = await store.claim(call_id, item, max_attempts=3)   # atomically ours, or who has it and why
    await store.checkpoint(call_id, transcription)             # a crash after this never pays Whisper again
    await store.complete(call_id, document)                    # done: one document, whoever finishes

Claiming is one conditional upsert, so any number of workers on any number of machines may race for a call and
exactly one wins. A claim is a lease: the holder renews it while it works; a killed worker's lease runs out and
the call becomes claimable again, resuming from its last checkpoint. Every write after the claim is fenced by the
owner, so a worker that lost its lease (paused, partitioned) cannot overwrite the one that took over.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ..store.database import Database, Row
from .errors import QueryError
from .sources import SourceItem

QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"
STATUSES = (QUEUED, PROCESSING, DONE, FAILED)

_COLUMNS = (
    "id, status, source_uri, name, size, recorded_at, attempts, error, next_attempt_at, lease_owner, lease_until, "
    "transcription, fields, document, duration_seconds, prompt_tokens, completion_tokens, processed_at, "
    "created_at, updated_at"
)

_CLAIM = """
INSERT INTO calls (id, status, source_uri, name, size, recorded_at, attempts, lease_owner, lease_until,
                   prompt_tokens, completion_tokens, created_at, updated_at)
VALUES (?, 'processing', ?, ?, ?, ?, 1, ?, ?, 0, 0, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    status = 'processing', attempts = CASE WHEN ? = 1 THEN 1 ELSE calls.attempts + 1 END,
    lease_owner = excluded.lease_owner, lease_until = excluded.lease_until, updated_at = excluded.updated_at,
    next_attempt_at = NULL,
    transcription = CASE WHEN ? = 1 THEN NULL ELSE calls.transcription END
WHERE (calls.status = 'processing' AND calls.lease_until < ?)
   OR calls.status = 'queued'
   OR (calls.status = 'failed' AND calls.next_attempt_at <= ? AND calls.attempts < ?)
   OR (? = 1 AND calls.status <> 'processing')
"""

# A scalar field equal to the value, or a list field holding it; case-insensitive. The field's name and the value
# are both bound parameters (no JSON path is built from the name), so no name can change the statement.
_WHERE_FIELD = {
    "sqlite": (
        "EXISTS (SELECT 1 FROM json_each(calls.fields) AS f WHERE f.key = ? AND ("
        "(f.type <> 'array' AND lower(f.value) = lower(?)) OR (f.type = 'array' AND "
        "EXISTS (SELECT 1 FROM json_each(f.value) AS e WHERE lower(e.value) = lower(?)))))"
    ),
    "postgresql": (
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(calls.fields -> ?) = 'array' "
        "THEN calls.fields -> ? ELSE jsonb_build_array(calls.fields -> ?) END) AS e(value) "
        "WHERE lower(e.value) = lower(?))"
    ),
}
# What a field name may be: a schema property as the bundled schema writes them. Checked although the name is a
# parameter, so that a hostile name is refused with a reason instead of silently matching nothing.
FIELD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: str
    status: str
    source_uri: str
    name: str
    size: int
    recorded_at: float | None
    attempts: int
    error: str | None
    next_attempt_at: float | None
    lease_owner: str | None
    lease_until: float | None
    transcription: dict[str, Any] | None
    fields: dict[str, Any] | None
    document: dict[str, Any] | None
    duration_seconds: float | None
    prompt_tokens: int
    completion_tokens: int
    processed_at: float | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Row) -> CallRecord:
        data = dict(row)
        for name in ("transcription", "fields", "document"):
            value = data[name]
            data[name] = json.loads(value) if isinstance(value, str) else value
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of `claim`: `won` with the row as it stands now (checkpoint included), or who holds it."""

    won: bool
    record: CallRecord


class CallStore:
    def __init__(self, db: Database, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def claim(self, call_id: str, item: SourceItem, *, max_attempts: int, force: bool = False) -> Claim:
        now = time.time()
        changed = await self.db.execute(
            _CLAIM,
            [
                call_id,
                item.uri,
                item.name,
                item.size,
                item.modified,
                self.owner,
                now + self.lease_seconds,
                now,
                now,
                int(force),
                int(force),
                now,
                now,
                max_attempts,
                int(force),
            ],
        )
        record = await self.get(call_id)
        assert record is not None  # inserted or already there
        return Claim(won=bool(changed) and record.lease_owner == self.owner, record=record)

    async def renew(self, call_id: str) -> bool:
        """Extend our lease; False when it is no longer ours."""
        changed = await self.db.execute(
            "UPDATE calls SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'processing'",
            [time.time() + self.lease_seconds, call_id, self.owner],
        )
        return changed == 1

    async def checkpoint(self, call_id: str, transcription: dict[str, Any]) -> bool:
        changed = await self.db.execute(
            "UPDATE calls SET transcription = ?, duration_seconds = ?, updated_at = ? WHERE id = ? AND lease_owner = ?",
            [_json(transcription), transcription.get("duration"), time.time(), call_id, self.owner],
        )
        return changed == 1

    async def complete(self, call_id: str, document: dict[str, Any]) -> bool:
        usage = document["usage"]
        now = time.time()
        changed = await self.db.execute(
            "UPDATE calls SET status = 'done', fields = ?, document = ?, prompt_tokens = ?, completion_tokens = ?, "
            "processed_at = ?, error = NULL, next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, "
            "updated_at = ? WHERE id = ? AND lease_owner = ?",
            [
                _json(document["fields"]),
                _json(document),
                usage["prompt_tokens"],
                usage["completion_tokens"],
                now,
                now,
                call_id,
                self.owner,
            ],
        )
        return changed == 1

    async def fail(self, call_id: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt; `retry_at` None means no automatic retry (`calls retry` re-queues it)."""
        changed = await self.db.execute(
            "UPDATE calls SET status = 'failed', error = ?, next_attempt_at = ?, lease_owner = NULL, "
            "lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?",
            [error[:2000], retry_at, time.time(), call_id, self.owner],
        )
        return changed == 1

    async def release(self, call_id: str) -> None:
        """Give an unfinished call back (we are shutting down): claimable at once, the attempt not counted."""
        await self.db.execute(
            "UPDATE calls SET status = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, "
            "updated_at = ? WHERE id = ? AND lease_owner = ? AND status = 'processing'",
            [time.time(), call_id, self.owner],
        )

    async def get(self, call_id: str) -> CallRecord | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM calls WHERE id = ?", [call_id])
        return CallRecord.from_row(rows[0]) if rows else None

    async def find(self, prefix: str) -> list[CallRecord]:
        """Calls whose id starts with `prefix` (ids are long: `calls show 3f2a9c` is enough)."""
        if not prefix or not prefix.isalnum() or not prefix.isascii():  # ids are hex: no LIKE wildcard gets in
            return []
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM calls WHERE id LIKE ? ORDER BY id LIMIT 2", [prefix + "%"])
        return [CallRecord.from_row(row) for row in rows]

    async def due(self, max_attempts: int, limit: int = 1000) -> list[CallRecord]:
        """Calls some worker should take up now: re-queued, failed and due for a retry, or abandoned by a crash."""
        now = time.time()
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM calls WHERE status = 'queued' "
            "OR (status = 'failed' AND next_attempt_at <= ? AND attempts < ?) "
            "OR (status = 'processing' AND lease_until < ?) ORDER BY updated_at LIMIT ?",
            [now, max_attempts, now, limit],
        )
        return [CallRecord.from_row(row) for row in rows]

    async def requeue_failed(self, ids: list[str] | None = None) -> list[CallRecord]:
        """`calls retry`: failed calls (all, or these) back to queued with a fresh attempt count."""
        if ids is None:
            failed = await self.query(status=FAILED, limit=None)
        else:  # the console's retry button names one call: read it alone, not every failed call
            found = [await self.get(call_id) for call_id in dict.fromkeys(ids)]
            failed = [record for record in found if record is not None and record.status == FAILED]
        for record in failed:
            await self.db.execute(
                "UPDATE calls SET status = 'queued', attempts = 0, next_attempt_at = NULL, updated_at = ? "
                "WHERE id = ? AND status = 'failed'",
                [time.time(), record.id],
            )
        return failed

    async def query(
        self,
        status: str | None = None,
        since: float | None = None,
        where: list[tuple[str, str]] | None = None,
        limit: int | None = 100,
    ) -> list[CallRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if since is not None:
            clauses.append("updated_at >= ?")
            params.append(since)
        for field, value in where or ():
            clause, values = field_clause(self.db.dialect, field, value)
            clauses.append(clause)
            params += values
        sql = f"SELECT {_COLUMNS} FROM calls"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at, id"
        if limit is not None:
            if limit < 0:
                raise QueryError(f"limit {limit}: must be 0 or more")
            sql += f" LIMIT {int(limit)}"
        return [CallRecord.from_row(row) for row in await self.db.fetch(sql, params)]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT status, COUNT(*) AS n FROM calls GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    # -- what a watcher has seen of its sources

    async def seen(self, uris: list[str]) -> dict[str, str]:
        """uri -> version already handed on, for the given uris."""
        found: dict[str, str] = {}
        for start in range(0, len(uris), 500):
            chunk = uris[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = await self.db.fetch(f"SELECT uri, version FROM call_files WHERE uri IN ({marks})", chunk)
            found.update({row["uri"]: row["version"] for row in rows})
        return found

    async def mark_seen(self, item: SourceItem, call_id: str | None) -> None:
        await self.db.execute(
            "INSERT INTO call_files (uri, version, call_id, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (uri) DO UPDATE SET version = excluded.version, call_id = excluded.call_id, "
            "updated_at = excluded.updated_at",
            [item.uri, item.version, call_id, time.time()],
        )


def check_filter(field: str, value: str) -> None:
    """Raise QueryError unless `field` is a plausible field name and `value` something a database can compare."""
    if not FIELD_NAME.fullmatch(field):
        raise QueryError(f"field name {field!r}: use letters, digits, '_' and '-' only (a field of the schema)")
    if "\x00" in value:
        raise QueryError(f"value {value!r} for {field!r}: NUL characters cannot be stored, so never match")


def field_clause(dialect: str, field: str, value: str) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of "extracted field `field` is, or holds, `value`"."""
    check_filter(field, value)
    params: list[Any] = [field, value, value] if dialect == "sqlite" else [field, field, field, value]
    return _WHERE_FIELD[dialect], params


def _json(value: Any) -> str:
    return json.dumps(_storable(value), ensure_ascii=False, separators=(",", ":"))


def _storable(value: Any) -> Any:
    """`value` with every NUL in its strings made U+FFFD: PostgreSQL's JSONB cannot hold \\u0000, and a model's
    answer or quote may contain one; both databases store the same document."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value
