"""Processed calls written through the call store's own API (claim, checkpoint, complete or fail), as the pipeline
writes them, for the calls explorer's tests.

    calls = seed_calls("sqlite:///...", folder)   # {"acme": CallRecord, "hostile": ..., "failed": ..., ...}
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aoai_gateway.calls.sources import SourceItem
from aoai_gateway.calls.store import CallRecord, CallStore
from aoai_gateway.store import connect_database, migrate

AUDIO = Path(__file__).parent.parent / "calls" / "audio" / "short-call.ogg"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTRIBUTE = '"><img src=x onerror=alert(2)>'
HOSTILE_FORMULA = "=cmd|' /C calc'!A0"
FILLERS = 52  # with the named calls, more than a page of 50


def _segments(lines: list[str]) -> list[dict[str, Any]]:
    return [{"start": 4.0 * i, "end": 4.0 * i + 3.5, "text": text} for i, text in enumerate(lines)]


def _fields(**given: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "customer_name": None,
        "company": None,
        "location": None,
        "products_of_interest": [],
        "budget": None,
        "timeline": None,
        "sentiment": "neutral",
        "next_steps": None,
        "summary": "A call.",
    }
    return {**fields, **given}


CALLS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "acme": (
        ["Hello, this is Dana Whitfield from Acme Ltd.", "We want solar panels and a home battery.", "About £9,000."],
        _fields(
            customer_name="Dana Whitfield",
            company="Acme Ltd",
            products_of_interest=["solar panels", "home battery"],
            budget="£9,000",
            sentiment="positive",
        ),
    ),
    "globex": (
        ["Globex here, Hank speaking.", "Only a heat pump for us.", "Budget is 40k."],
        _fields(
            customer_name="Hank Scorpio",
            company="Globex",
            products_of_interest=["heat pump"],
            budget="40k",
            sentiment="negative",
        ),
    ),
    "hostile": (
        [HOSTILE_SCRIPT, "Nothing more to say."],
        _fields(customer_name=HOSTILE_ATTRIBUTE, company=HOSTILE_FORMULA, sentiment="neutral"),
    ),
}


async def _seed(database_url: str, folder: Path) -> dict[str, CallRecord]:
    db = await connect_database(database_url)
    try:
        await migrate(db)
        await db.execute("DELETE FROM calls")  # a PostgreSQL database lives for the whole test session
        store = CallStore(db, "seeder", 60.0)
        records: dict[str, CallRecord] = {}
        for index in range(FILLERS):
            await _done(store, folder, f"filler-{index:03d}", ["Just checking an order."], _fields())
        for name, (lines, fields) in CALLS.items():
            records[name] = await _done(store, folder, name, lines, fields)
        # Failed for good (no automatic retry): what the console's retry button is for.
        item = _item(folder, "failed", b"failed")
        call_id = hashlib.sha256(b"failed").hexdigest()
        assert (await store.claim(call_id, item, max_attempts=3)).won
        assert await store.fail(call_id, "extraction: the model never answered valid JSON", None)
        records["failed"] = await _get(store, call_id)
        # Recordings the console must not play: a path climbing out of the folder, a link out of it, elsewhere.
        outside = folder.parent / "outside.ogg"
        shutil.copy(AUDIO, outside)
        (folder / "link.ogg").symlink_to(outside)
        for name, uri in (
            ("climb", f"{folder}/../outside.ogg"),
            ("link", str(folder / "link.ogg")),
            ("elsewhere", str(outside)),
        ):
            item = SourceItem(uri, name, outside.stat().st_size, "1", 0.0)
            call_id = hashlib.sha256(name.encode()).hexdigest()
            assert (await store.claim(call_id, item, max_attempts=3)).won
            assert await store.fail(call_id, "kept for the traversal tests", None)
            records[name] = await _get(store, call_id)
        return records
    finally:
        await db.close()


def _item(folder: Path, name: str, content: bytes | None = None) -> SourceItem:
    path = folder / f"{name}.ogg"
    if content is None:
        shutil.copy(AUDIO, path)
    else:
        path.write_bytes(content)
    info = path.stat()
    return SourceItem(str(path), path.name, info.st_size, f"{info.st_mtime_ns}:{info.st_size}", info.st_mtime)


async def _done(store: CallStore, folder: Path, name: str, lines: list[str], fields: dict[str, Any]) -> CallRecord:
    item = _item(folder, name, None if name == "acme" else name.encode())  # a call id is its audio's hash
    call_id = hashlib.sha256(Path(item.uri).read_bytes()).hexdigest()
    assert (await store.claim(call_id, item, max_attempts=3)).won
    segments = _segments(lines)
    text = " ".join(lines)
    transcription = {"text": text, "segments": segments, "duration": 4.0 * len(lines), "language": "en"}
    assert await store.checkpoint(call_id, transcription)
    evidence = {
        key: {"value": value, "quote": lines[0], "found": True, "score": 1.0, "start": 0.0, "end": 3.5}
        for key, value in fields.items()
        if isinstance(value, str) and key != "summary"
    }
    document = {
        "id": call_id,
        "source": {"uri": item.uri, "name": item.name},
        "fields": fields,
        "evidence": evidence,
        "transcript": text,
        "models": {
            "transcription": {"model": "whisper-1", "deployment": "whisper", "seconds": 1.5},
            "extraction": {"model": "gpt-4o", "deployment": "gpt-4o", "requests": 1, "seconds": 0.8},
        },
        "usage": {
            "audio_seconds": 4.0 * len(lines),
            "prompt_tokens": 300,
            "completion_tokens": 80,
            "total_tokens": 380,
        },
    }
    assert await store.complete(call_id, document)
    return await _get(store, call_id)


async def _get(store: CallStore, call_id: str) -> CallRecord:
    record = await store.get(call_id)
    assert record is not None
    return record


def seed_calls(database_url: str, folder: Path) -> dict[str, CallRecord]:
    """The seeded calls; in a thread of its own, as Playwright's sync API runs a loop in the test's thread."""
    folder.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed(database_url, folder)).result(timeout=120)


async def _seed_blobs(database_url: str, connection_string: str, blobs: dict[str, str]) -> dict[str, str]:
    """Each `azure://container/name` of `blobs` uploaded (the test recording) and stored as a call; name -> id."""
    from azure.storage.blob.aio import BlobServiceClient

    audio = AUDIO.read_bytes()
    db = await connect_database(database_url)
    ids: dict[str, str] = {}
    try:
        await migrate(db)
        store = CallStore(db, "seeder", 60.0)
        async with BlobServiceClient.from_connection_string(connection_string) as service:
            for name, uri in blobs.items():
                container, _, blob = uri.removeprefix("azure://").partition("/")
                if "/../" not in uri:  # a climbing name is refused before any request: nothing to upload
                    if not await service.get_container_client(container).exists():
                        await service.create_container(container)
                    await service.get_blob_client(container, blob).upload_blob(audio, overwrite=True)
                call_id = hashlib.sha256(name.encode()).hexdigest()  # one recording, several calls: ids apart
                assert (await store.claim(call_id, SourceItem(uri, name, len(audio), "1", 0.0), max_attempts=3)).won
                assert await store.fail(call_id, "kept for the playback tests", None)
                ids[name] = call_id
    finally:
        await db.close()
    return ids


async def _seed_recordings(database_url: str, uris: dict[str, str]) -> dict[str, str]:
    db = await connect_database(database_url)
    ids: dict[str, str] = {}
    try:
        store = CallStore(db, "seeder", 60.0)
        for name, uri in uris.items():
            call_id = hashlib.sha256(f"recording:{name}".encode()).hexdigest()
            assert (await store.claim(call_id, SourceItem(uri, name, 1, "1", 0.0), max_attempts=3)).won
            assert await store.fail(call_id, "kept for the playback tests", None)
            ids[name] = call_id
    finally:
        await db.close()
    return ids


def seed_recordings(database_url: str, uris: dict[str, str]) -> dict[str, str]:
    """A failed call for each `name: stored path` (the path as the store would hold it); name -> call id."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed_recordings(database_url, uris)).result(timeout=120)


async def _seed_bulk(database_url: str, count: int, transcript: Callable[[int], str]) -> None:
    db = await connect_database(database_url)
    insert = (
        "INSERT INTO calls (id, status, source_uri, name, size, attempts, fields, document, created_at, updated_at) "
        "VALUES (?, 'done', ?, ?, 1, 1, ?, ?, ?, ?)"
    )
    start = time.time() - 86400  # older than the seeded calls: bulk-000 the newest of these, one a second
    try:
        rows = []
        for i in range(count):
            call_id, name, at = hashlib.sha256(f"bulk-{i}".encode()).hexdigest(), f"bulk-{i:03d}", start - i
            document = {
                "id": call_id,
                "source": {"uri": f"/bulk/{name}.ogg", "name": name},
                "transcript": transcript(i),
            }
            rows.append([call_id, f"/bulk/{name}.ogg", name, json.dumps({}), json.dumps(document), at, at])
        await db.execute_many(insert, rows)
    finally:
        await db.close()


def seed_bulk(database_url: str, count: int, transcript: Callable[[int], str]) -> list[str]:
    """`count` more done calls written in one batch (as `calls_explorer_bench.py` does), older than those of
    `seed_calls`, call i saying `transcript(i)`; their names, newest first."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _seed_bulk(database_url, count, transcript)).result(timeout=120)
    return [f"bulk-{i:03d}" for i in range(count)]


def seed_blob_calls(database_url: str, connection_string: str, blobs: dict[str, str]) -> dict[str, str]:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed_blobs(database_url, connection_string, blobs)).result(timeout=120)
