"""The calls explorer's transcript search on PostgreSQL: served by migration 0011's pg_trgm index with exactly the
results of the plain scan it replaced, and the same search (without the index) where pg_trgm cannot be created."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aoai_gateway.calls.browse import CallBrowser, CallFilter
from aoai_gateway.calls.store import CallStore
from aoai_gateway.store import connect_database, migrate

from .calls_data import seed_bulk

# Wildcards, the LIKE escape, case, letters whose lower case is longer or not ASCII, spaces.
TRANSCRIPTS = [
    "A needle in a haystack.",
    "We are 100% sure, 50% off the ÉCLAIR.",
    "Column a_b, not axb.",
    "A back\\slash and a \\% sign.",
    "Die Straße in İstanbul, STRASSE in caps.",
    "ǅemal said: Ωmega Σίσυφος.",
    "quote for panels, QUOTE FOR the roof",
    "",
    "needle",
]
TERMS = [
    "needle",
    "NEEDLE IN",
    "ee",
    "n",
    "%",
    "100%",
    "0% o",
    "_",
    "a_b",
    "a%b",
    "\\",
    "\\%",
    "back\\s",
    "éclair",
    "straße",
    "strasse",
    "İstanbul",
    "istanbul",
    "ǆemal",
    "σίσυφος",
    "quote for",
    " ",
    "zebra",
    "'; DROP TABLE calls; --",
]
# The search as it was before migration 0011: strpos reads each document, no index can serve it.
PLAIN_SCAN = "strpos(lower(document ->> 'transcript'), lower($1)) > 0"


@pytest.fixture
async def searched(postgres_url: str) -> AsyncIterator[str]:
    """The session's PostgreSQL database with migrations applied and calls saying each of TRANSCRIPTS, 12 times."""
    db = await connect_database(postgres_url)
    try:
        assert "0011_calls_transcript_search" in {row["name"] for row in await _migrated(db)}
        await db.execute("DELETE FROM calls")
    finally:
        await db.close()
    seed_bulk(postgres_url, 12 * len(TRANSCRIPTS), lambda i: TRANSCRIPTS[i % len(TRANSCRIPTS)])
    yield postgres_url


async def _migrated(db: Any) -> list[dict[str, Any]]:
    await migrate(db)
    return await db.fetch("SELECT name FROM schema_migrations")  # type: ignore[no-any-return]


async def test_the_indexed_search_finds_what_the_plain_scan_finds(searched: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    db = await connect_database(searched)
    connection = await asyncpg.connect(searched)
    try:
        browser = CallBrowser(CallStore(db, "test", 60))
        for term in TERMS:
            clause, value = CallFilter(text=term).search("postgresql")
            indexed_sql = f"SELECT id FROM calls WHERE {clause.replace('?', '$1')} ORDER BY id"
            # 108 rows: the planner would rather read them all, or walk the primary key; make it use the index.
            await connection.execute("SET enable_seqscan = off; SET enable_indexscan = off")
            plan = "\n".join(row[0] for row in await connection.fetch(f"EXPLAIN {indexed_sql}", value))
            if len(term) >= 3:  # a trigram to look up (a shorter term reads the whole index, or the table)
                assert "calls_transcript_trgm" in plan, (term, plan)
            indexed = [row["id"] for row in await connection.fetch(indexed_sql, value)]
            await connection.execute("RESET enable_seqscan; RESET enable_indexscan")
            plain = await _plain(connection, term)
            assert indexed == plain, term
            page = await browser.page(CallFilter(text=term), size=1000)  # what the explorer lists
            assert sorted(record.id for record in page.records) == plain, term
        assert len(await _plain(connection, "needle")) == 24  # 2 of the transcripts, 12 calls each
    finally:
        await connection.close()
        await db.close()


async def _plain(connection: Any, term: str) -> list[str]:
    return [row["id"] for row in await connection.fetch(f"SELECT id FROM calls WHERE {PLAIN_SCAN} ORDER BY id", term)]


async def test_without_pg_trgm_the_search_scans_and_the_migration_waits(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may create tables but not extensions: every other migration applies, 0011 is not recorded (a
    warning says what to do), the search still answers; once pg_trgm exists the next start builds the index."""
    import asyncpg

    admin_url = postgres_url.rsplit("/", 1)[0] + "/postgres"
    suffix = uuid.uuid4().hex[:10]
    role, database = f"aoai_noext_{suffix}", f"aoai_noext_{suffix}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"CREATE DATABASE {database}")
    url = admin_url.replace("//postgres@", f"//{role}@").rsplit("/", 1)[0] + f"/{database}"
    try:
        owner = await asyncpg.connect(admin_url.rsplit("/", 1)[0] + f"/{database}")
        try:
            await owner.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        finally:
            await owner.close()
        db = await connect_database(url)
        try:
            with caplog.at_level(logging.WARNING, logger="aoai_gateway.migrations"):
                applied = await migrate(db)
            assert "0010_calls_explorer" in applied and "0011_calls_transcript_search" not in applied
            assert "CREATE EXTENSION pg_trgm failed" in caplog.text and "superuser" in caplog.text
            await db.execute(
                "INSERT INTO calls (id, status, source_uri, name, size, document, created_at, updated_at) "
                "VALUES ('c1', 'done', '/a.ogg', 'a.ogg', 1, ?, 1, 1)",
                ['{"transcript": "A Needle, 100% sure"}'],
            )
            browser = CallBrowser(CallStore(db, "test", 60))
            assert [r.id for r in (await browser.page(CallFilter(text="needle, 100%"))).records] == ["c1"]
            assert (await browser.page(CallFilter(text="needle_"))).records == []

            await admin.execute(f"GRANT CREATE ON DATABASE {database} TO {role}")  # pg_trgm is a trusted extension
            assert await migrate(db) == ["0011_calls_transcript_search"]
            indexes = await db.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'calls'")
            assert "calls_transcript_trgm" in {row["indexname"] for row in indexes}
            assert [r.id for r in (await browser.page(CallFilter(text="needle, 100%"))).records] == ["c1"]
        finally:
            await db.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
