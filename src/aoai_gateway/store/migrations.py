"""Versioned schema migrations: ordered, named, each applied once and recorded in `schema_migrations`.

    await migrate(db)      # at start-up of the server and of every CLI command that touches the store

A migration is a list of portable SQL statements (TEXT, BIGINT, DOUBLE PRECISION work on SQLite and
PostgreSQL alike; `{json}` becomes JSONB on PostgreSQL and TEXT on SQLite); add new ones at the end, never edit
an applied one. What only one dialect can do is a step in `DIALECT_STEPS`, keyed by (migration, dialect): an async
function giving more statements for that migration, or None when this server cannot take them now (a missing
extension): then the migration is not recorded, the log says why, and the next start tries it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ..errors import GatewayError
from .database import Database
from .rollups import DAY, DIMS_SQL, EVER_TABLE, KEYLESS, KEYLESS_DIMS_SQL, MEASURES, TABLES

# A rollup table's shape: the hourly and daily ones (0004), the keyless and all-time ones (0009).
_ROLLUP_TABLE = """CREATE TABLE {table} (
    bucket BIGINT NOT NULL,
    dims TEXT NOT NULL,
    key_id TEXT,
    event_id TEXT,
    model TEXT,
    deployment TEXT,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    audio_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, dims)
)"""

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_keys_events_usage",
        [
            """CREATE TABLE events (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                starts_at DOUBLE PRECISION NOT NULL,
                ends_at DOUBLE PRECISION NOT NULL,
                timezone TEXT NOT NULL,
                models TEXT,
                daily_requests BIGINT,
                daily_tokens BIGINT,
                max_tokens BIGINT,
                shared_code_hash TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                secret_hash TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                models TEXT,
                rpm BIGINT,
                tpm BIGINT,
                daily_requests BIGINT,
                daily_tokens BIGINT,
                max_tokens BIGINT,
                budget_tokens BIGINT,
                expires_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION,
                event_id TEXT REFERENCES events(id),
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX keys_event ON keys (event_id)",
            """CREATE TABLE usage (
                id BIGINT,
                at DOUBLE PRECISION NOT NULL,
                key_id TEXT,
                event_id TEXT,
                model TEXT,
                deployment TEXT,
                route TEXT,
                status BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                audio_seconds DOUBLE PRECISION NOT NULL,
                latency_ms DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX usage_at ON usage (at)",
            "CREATE INDEX usage_key_at ON usage (key_id, at)",
            "CREATE INDEX usage_event_at ON usage (event_id, at)",
        ],
    ),
    (
        "0002_calls",
        [
            # One document per recording, keyed by the hash of its audio: the unit of idempotency and of work.
            """CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                source_uri TEXT NOT NULL,
                name TEXT NOT NULL,
                size BIGINT NOT NULL,
                recorded_at DOUBLE PRECISION,
                attempts BIGINT NOT NULL DEFAULT 0,
                error TEXT,
                next_attempt_at DOUBLE PRECISION,
                lease_owner TEXT,
                lease_until DOUBLE PRECISION,
                transcription {json},
                fields {json},
                document {json},
                duration_seconds DOUBLE PRECISION,
                prompt_tokens BIGINT NOT NULL DEFAULT 0,
                completion_tokens BIGINT NOT NULL DEFAULT 0,
                processed_at DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX calls_status ON calls (status, next_attempt_at)",
            "CREATE INDEX calls_processed ON calls (processed_at)",
            # What a watcher has seen of each source file, so a restart does not read every file again.
            """CREATE TABLE call_files (
                uri TEXT PRIMARY KEY,
                version TEXT NOT NULL,
                call_id TEXT,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ],
    ),
    (
        "0003_event_registration",
        [
            # Who an attendee key belongs to, as registration normalised it ("email:ann@example.com",
            # "name:ann lee"); NULL for keys made by an admin. NULLs never collide in a unique index.
            "ALTER TABLE keys ADD COLUMN attendee TEXT",
            "ALTER TABLE events ADD COLUMN max_attendees BIGINT",
            "ALTER TABLE events ADD COLUMN attendees BIGINT NOT NULL DEFAULT 0",
            # Existing attendees claim their identity, the oldest key of each (event, lower-cased name) only:
            # later duplicates keep working (a migration revokes nothing) but hold no identity, so the index can
            # be built over them. SQL's lower(trim()) matches the gateway's own normalisation for e-mails and
            # plain names; a name it normalises differently can register once more.
            """UPDATE keys
                SET attendee = CASE WHEN name LIKE '%@%' THEN 'email:' ELSE 'name:' END || lower(trim(name))
                WHERE event_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM keys AS older
                    WHERE older.event_id = keys.event_id
                      AND lower(trim(older.name)) = lower(trim(keys.name))
                      AND (older.created_at < keys.created_at
                           OR (older.created_at = keys.created_at AND older.id < keys.id))
                )""",
            "CREATE UNIQUE INDEX keys_event_attendee ON keys (event_id, attendee)",
            "UPDATE events SET attendees = (SELECT COUNT(*) FROM keys WHERE keys.event_id = events.id)",
        ],
    ),
    (
        "0004_usage_rollups",
        [
            # Usage summed per UTC hour and day (store/rollups.py), kept in step by the ledger's flush and
            # back-filled here from the rows already written; usage reports read these, not the raw ledger.
            *(_ROLLUP_TABLE.format(table=table) for table in ("usage_hourly", "usage_daily")),
            "CREATE INDEX usage_daily_key ON usage_daily (key_id, bucket)",
            "CREATE INDEX usage_daily_event ON usage_daily (event_id, bucket)",
            f"""INSERT INTO usage_hourly
                SELECT CAST(FLOOR(at / 3600) AS BIGINT), {DIMS_SQL}, key_id, event_id, model, deployment, COUNT(*),
                    SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens),
                    SUM(audio_seconds)
                FROM usage GROUP BY CAST(FLOOR(at / 3600) AS BIGINT), key_id, event_id, model, deployment""",
            """INSERT INTO usage_daily
                SELECT CAST(FLOOR(bucket / 24.0) AS BIGINT), dims, key_id, event_id, model, deployment,
                    SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(audio_seconds)
                FROM usage_hourly
                GROUP BY CAST(FLOOR(bucket / 24.0) AS BIGINT), dims, key_id, event_id, model, deployment""",
        ],
    ),
    (
        "0005_response_placements",
        [
            """CREATE TABLE response_placements (
                id TEXT PRIMARY KEY,
                endpoint TEXT NOT NULL,
                deployment TEXT NOT NULL,
                key_id TEXT,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX response_placements_expiry ON response_placements (expires_at)",
        ],
    ),
    (
        "0006_owned_objects",
        [
            # Files and batches a gateway key created (files.key_access: own): the only ids that key may use.
            """CREATE TABLE owned_objects (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX owned_objects_key ON owned_objects (key_id, kind)",
        ],
    ),
    (
        "0007_event_admin",
        [
            # A deleted event is kept (its usage still names it, its keys still point at it) but hidden; its keys
            # are revoked in the same transaction (store/events.py).
            "ALTER TABLE events ADD COLUMN deleted_at DOUBLE PRECISION",
            # The pages of the admin API and the CLI: events by start, an event's attendees by registration.
            "CREATE INDEX events_starts ON events (starts_at, id)",
            "CREATE INDEX keys_event_created ON keys (event_id, created_at, id)",
            # A page of attendees' usage today reads the hourly rollup of those keys only, not every key's hours.
            "CREATE INDEX usage_hourly_key ON usage_hourly (key_id, bucket)",
        ],
    ),
    (
        "0008_assistant_sessions",
        [
            # The voice assistant's conversations (assistant/sessions.py): messages and a pending confirmation.
            """CREATE TABLE assistant_sessions (
                id TEXT PRIMARY KEY,
                key_id TEXT,
                state {json} NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX assistant_sessions_expiry ON assistant_sessions (expires_at)",
        ],
    ),
    (
        "0009_console",
        [
            # The console's keys page: every key, newest first, a page at a time (store/keys.py `newest`).
            "CREATE INDEX keys_created ON keys (created_at, id)",
            # Admin sessions (console/sessions.py `StoredSessions`): only the SHA-256 of a session id is stored.
            """CREATE TABLE console_sessions (
                id_hash TEXT PRIMARY KEY,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)",
            # Reports over many keys (store/rollups.py): the sums without the key per hour and day, and per key
            # for all time, back-filled from the rollups already written.
            *(_ROLLUP_TABLE.format(table=table) for table in (*KEYLESS.values(), EVER_TABLE)),
            # Covering: usage by key all time (and a page of attendees' usage) reads the index alone, in key order.
            f"CREATE INDEX {EVER_TABLE}_key ON {EVER_TABLE} (key_id, {', '.join(MEASURES)})",
            f"CREATE INDEX {EVER_TABLE}_event ON {EVER_TABLE} (event_id)",
            *(
                f"""INSERT INTO {KEYLESS[span]}
                    SELECT bucket, {KEYLESS_DIMS_SQL}, NULL, event_id, model, deployment, SUM(requests), SUM(errors),
                        SUM(prompt_tokens), SUM(completion_tokens), SUM(audio_seconds)
                    FROM {TABLES[span]} GROUP BY bucket, event_id, model, deployment"""
                for span in KEYLESS
            ),
            f"""INSERT INTO {EVER_TABLE}
                SELECT 0, dims, key_id, event_id, model, deployment, SUM(requests), SUM(errors), SUM(prompt_tokens),
                    SUM(completion_tokens), SUM(audio_seconds)
                FROM {TABLES[DAY]} GROUP BY dims, key_id, event_id, model, deployment""",
            # An event's live view reads the last minutes of its raw rows: from the index alone, not the table.
            "DROP INDEX usage_event_at",
            "CREATE INDEX usage_event_live ON usage (event_id, at, key_id, status, prompt_tokens, completion_tokens)",
        ],
    ),
    (
        "0010_calls_explorer",
        [
            # The console's calls explorer (calls/browse.py): newest first, a page at a time from a cursor, all
            # calls or those of one status.
            "CREATE INDEX calls_created ON calls (created_at, id)",
            "CREATE INDEX calls_status_created ON calls (status, created_at, id)",
        ],
    ),
    (
        # The transcript search's index: PostgreSQL only (DIALECT_STEPS); SQLite has no trigram index and keeps
        # reading a window of documents a page.
        "0011_calls_transcript_search",
        [],
    ),
]

log = logging.getLogger("aoai_gateway.migrations")

DialectStep = Callable[[Database], Awaitable[list[str] | None]]


async def _transcript_trigrams(db: Database) -> list[str] | None:
    """PostgreSQL: a pg_trgm index serving the calls explorer's transcript search (calls/browse.py's LIKE on
    `lower(document ->> 'transcript')`), so a search finds its calls on the index instead of reading every document
    of its window. pg_trgm ships with PostgreSQL but creating it needs CREATE on the database (it is a trusted
    extension) or a superuser; without it the search reads the documents, with the same results."""
    if not await _has_trgm(db):
        try:
            await db.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except GatewayError:  # the database itself is unavailable: not a missing privilege
            raise
        except Exception as exc:  # any driver error: privilege, extension not installed, a concurrent creation
            if not await _has_trgm(db):
                log.warning(
                    "transcript search without an index: CREATE EXTENSION pg_trgm failed (%s: %s); the calls "
                    "explorer's search reads each document instead. Run it as a superuser (or grant CREATE on the "
                    "database) and restart to build the index (migration 0011_calls_transcript_search).",
                    type(exc).__name__,
                    exc,
                )
                return None
    return [
        "CREATE INDEX calls_transcript_trgm ON calls USING gin (lower(document ->> 'transcript') gin_trgm_ops)",
        # The planner's statistics of the indexed expression, now rather than at autovacuum's next pass: without
        # them it cannot tell a term most transcripts hold (walk the newest calls) from a rare one (the index).
        "ANALYZE calls",
    ]


async def _has_trgm(db: Database) -> bool:
    return bool(await db.fetch("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))


DIALECT_STEPS: dict[tuple[str, str], DialectStep] = {
    ("0011_calls_transcript_search", "postgresql"): _transcript_trigrams,
}

_JSON_TYPE = {"postgresql": "JSONB", "sqlite": "TEXT"}


async def migrate(db: Database) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; the names applied now."""
    await db.script(
        ["CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"]
    )
    done = {row["name"] for row in await db.fetch("SELECT name FROM schema_migrations")}
    applied = []
    for name, statements in MIGRATIONS:
        if name in done:
            continue
        json_type = _JSON_TYPE.get(db.dialect, "TEXT")
        portable = [statement.replace("{json}", json_type) for statement in statements]
        if (step := DIALECT_STEPS.get((name, db.dialect))) is not None:
            if (own := await step(db)) is None:
                continue  # not possible on this server now: not recorded, tried again at the next start
            portable += own
        record = f"INSERT INTO schema_migrations (name, applied_at) VALUES ('{name}', {time.time()})"
        try:
            await db.script([*portable, record])
        except Exception:
            # Another process (the server and a CLI command starting together) may have applied it first.
            if name in {row["name"] for row in await db.fetch("SELECT name FROM schema_migrations")}:
                continue
            raise
        applied.append(name)
    return applied
