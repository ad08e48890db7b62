"""When a backing service fails: private Redis and PostgreSQL servers are killed and restarted under load (20
clients on loopback), and the gateway answers 200, 429 or a 503 that names the service, never a 500; the usage
ledger loses nothing; /readyz says which service is down and comes back."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

from .conftest import EMULATOR_KEY, GatewayFactory
from .keyed import MASTER
from .private_services import PrivatePostgres, PrivateRedis
from .servers import AsgiServer

CLIENTS = 20
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        yield server


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


def keys_gateway(start: GatewayFactory, emulator: AsgiServer, **overrides: Any) -> AsgiServer:
    access = {"usage_flush_seconds": 0.05, **overrides.pop("access", {})}
    return start(
        auth="keys",
        admin={"master_key": MASTER},
        access=access,
        logging={"access_log": False},
        deployments=[{"model": "gpt-4o", "endpoint": emulator.url, "api_key": EMULATOR_KEY}],
        **overrides,
    )


class Load:
    """CLIENTS clients sending chat calls with `secret` until stopped (bounded in count and time)."""

    def __init__(self, url: str, secret: str, *, limit: int = 20_000, seconds: float = 240) -> None:
        self.url, self.secret, self.limit, self.deadline = url, secret, limit, time.monotonic() + seconds
        self.responses: list[httpx.Response] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def count(self, status: int) -> int:
        return sum(r.status_code == status for r in self.responses)

    async def __aenter__(self) -> Load:
        self._client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CLIENTS))
        self._tasks = [asyncio.create_task(self._client_loop()) for _ in range(CLIENTS)]
        return self

    async def _client_loop(self) -> None:
        headers = {"authorization": f"Bearer {self.secret}"}
        while not self._stop.is_set() and len(self.responses) < self.limit and time.monotonic() < self.deadline:
            self.responses.append(
                await self._client.post(f"{self.url}/v1/chat/completions", json=BODY, headers=headers)
            )

    async def until(self, condition: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what}: not within {timeout} s; {Counter(self.statuses())}"
            assert any(not t.done() for t in self._tasks), f"the load ended before {what}"
            await asyncio.sleep(0.05)

    def statuses(self) -> list[int]:
        return [r.status_code for r in self.responses]

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._client.aclose()


async def readyz(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{url}/readyz")


async def ready_becomes(url: str, status: int, down: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        answer = await readyz(url)
        if answer.status_code == status and (down is None or down in answer.json().get("down", {})):
            return dict(answer.json())
        assert time.monotonic() < deadline, answer.text
        await asyncio.sleep(0.1)


def assert_only_known_failures(responses: list[httpx.Response], codes: set[str]) -> Counter[str]:
    """Every answer is a 200, a 429 or a 503 with Retry-After and one of `codes`; their tally."""
    tally: Counter[str] = Counter()
    for response in responses:
        if response.status_code == 200:
            tally["200"] += 1
            continue
        assert response.status_code in (429, 503), (response.status_code, response.text)
        code = response.json()["error"]["code"]
        assert response.status_code == 429 or code in codes, response.text
        assert "retry-after" in response.headers or code == "insufficient_quota", response.headers
        tally[f"{response.status_code} {code}"] += 1
    return tally


async def ledger_count(db: Any, key_id: str, status: int | None = None) -> int:
    sql = "SELECT COUNT(*) AS n FROM usage WHERE key_id = ?" + (" AND status = ?" if status else "")
    rows = await db.fetch(sql, [key_id, status] if status else [key_id])
    return int(rows[0]["n"])


async def ledger_reaches(db: Any, key_id: str, total: int) -> None:
    deadline = time.monotonic() + 120
    while await ledger_count(db, key_id) < total:
        assert time.monotonic() < deadline, f"ledger holds {await ledger_count(db, key_id)} of {total} rows"
        await asyncio.sleep(0.1)


async def fresh_database(postgres: PrivatePostgres) -> tuple[Any, str]:
    """A new database on the private server, migrated; (connection, url)."""
    import uuid

    admin = await connect_database(postgres.url)
    name = f"gw_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    db = await connect_database(url)
    await migrate(db)
    return db, url


async def test_redis_killed_under_load_fails_closed_and_recovers(
    postgres: PrivatePostgres, redis: PrivateRedis, start_gateway: GatewayFactory, emulator_server: AsgiServer
) -> None:
    db, url = await fresh_database(postgres)
    key, secret = await KeyStore(db).create(KeySpec("load", limits=Limits(rpm=1_000_000, daily_requests=1_000_000)))
    gateway = keys_gateway(start_gateway, emulator_server, database_url=url, redis_url=redis.url)
    async with Load(gateway.url, secret) as load:
        await load.until(lambda: load.count(200) >= 40, "first answers")
        redis.stop()
        await load.until(lambda: load.count(503) >= 40, "503s while Redis is down")
        assert (await ready_becomes(gateway.url, 503, "redis"))["down"].keys() == {"redis"}
        redis.start()  # empty: the day counter is re-seeded from the ledger
        served = load.count(200)
        await load.until(lambda: load.count(200) >= served + 40, "answers after Redis is back")
        await ready_becomes(gateway.url, 200)
    tally = assert_only_known_failures(load.responses, {"limits_unavailable"})
    print("Redis outage:", dict(tally))
    await ledger_reaches(db, key.id, len(load.responses))
    assert await ledger_count(db, key.id) == len(load.responses)
    assert await ledger_count(db, key.id, 200) == tally["200"]
    await db.close()


async def test_postgres_stopped_under_load_keeps_known_keys(
    postgres: PrivatePostgres, start_gateway: GatewayFactory, emulator_server: AsgiServer
) -> None:
    db, url = await fresh_database(postgres)
    store = KeyStore(db)
    key, secret = await store.create(KeySpec("known", limits=Limits(rpm=1_000_000)))
    _, unseen = await store.create(KeySpec("never used yet"))
    await db.close()
    gateway = keys_gateway(start_gateway, emulator_server, database_url=url)
    async with Load(gateway.url, secret) as load, httpx.AsyncClient(timeout=30) as client:
        await load.until(lambda: load.count(200) >= 40, "first answers")
        postgres.stop()
        await ready_becomes(gateway.url, 503, "database")
        served = load.count(200)
        await load.until(lambda: load.count(200) >= served + 100, "the known key served during the outage")
        new = await client.post(
            f"{gateway.url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {unseen}"}
        )
        assert new.status_code == 503 and new.json()["error"]["code"] == "key_store_unavailable", new.text
        assert "retry-after" in new.headers
        admin = await client.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {MASTER}"})
        assert admin.status_code == 503 and admin.json()["error"]["code"] == "database_unavailable", admin.text
        postgres.start()
        await ready_becomes(gateway.url, 200)
        served = load.count(200)
        await load.until(lambda: load.count(200) >= served + 40, "answers after PostgreSQL is back")
    tally = assert_only_known_failures(load.responses, set())
    print("PostgreSQL outage:", dict(tally))
    db = await connect_database(url)
    await ledger_reaches(db, key.id, len(load.responses))
    assert await ledger_count(db, key.id) == len(load.responses) == tally["200"]
    await db.close()


async def test_redis_restarted_empty_continues_the_day(
    redis: PrivateRedis, keyed: Any, emulator_server: AsgiServer
) -> None:
    start, keys, db, _ = keyed
    secret = await keys.make(daily_requests=20)
    key_id = (await db.fetch("SELECT id FROM keys"))[0]["id"]
    gateway = start(redis_url=redis.url)
    async with httpx.AsyncClient(timeout=30) as client:

        async def chat() -> int:
            headers = {"authorization": f"Bearer {secret}"}
            return (await client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=headers)).status_code

        assert [await chat() for _ in range(8)] == [200] * 8
        await ledger_reaches(db, key_id, 8)
        redis.stop()
        redis.start()  # empty
        statuses = await asyncio.gather(*(chat() for _ in range(30)))
    assert statuses.count(200) == 12 and statuses.count(429) == 18, statuses


async def test_local_policy_serves_within_local_limits_while_redis_is_down(redis: PrivateRedis, keyed: Any) -> None:
    start, keys, db, _ = keyed
    secret = await keys.make(daily_requests=10)
    key_id = (await db.fetch("SELECT id FROM keys"))[0]["id"]
    gateway = start(redis_url=redis.url, access={"on_limiter_failure": "local"})
    headers = {"authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(timeout=30) as client:
        first = [(await client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=headers)).status_code]
        await ledger_reaches(db, key_id, 1)  # the local counters are seeded from the ledger
        redis.stop()
        during = [
            (await client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=headers)).status_code
            for _ in range(12)
        ]
        ready = await readyz(gateway.url)
        assert ready.status_code == 200  # degraded, not out of rotation: that is what `local` is for
        redis.start()  # empty: re-seeded from the ledger, which has the outage's requests
        await ledger_reaches(db, key_id, 13)
        after = (await client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=headers)).status_code
    assert first == [200]
    assert during.count(200) == 9 and during.count(429) == 3, during  # the day's cap, counted in this process
    assert after == 429


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (root can mount one here); skipped where mounting is not allowed."""
    folder = Path(tempfile.mkdtemp(prefix="aoai-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


async def test_admin_write_on_a_full_disk_is_507(
    small_disk: Path, start_gateway: GatewayFactory, emulator_server: AsgiServer
) -> None:
    gateway = keys_gateway(start_gateway, emulator_server, data_dir=str(small_disk / "data"))
    admin = {"authorization": f"Bearer {MASTER}"}
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(f"{gateway.url}/admin/keys", json={"name": "a"}, headers=admin)).status_code == 201
        filler = small_disk / "filler"
        # Unbuffered: a buffered file's close would retry what the full disk refused, and raise.
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(descriptor, b"\0" * 65536)
        except OSError:
            pass  # the disk is full
        finally:
            os.close(descriptor)
        refused = None
        for index in range(200):  # the WAL may still have room for a few pages
            answer = await client.post(f"{gateway.url}/admin/keys", json={"name": f"k{index}" * 50}, headers=admin)
            if answer.status_code != 201:
                refused = answer
                break
        assert refused is not None and refused.status_code == 507, refused and refused.text
        error = refused.json()["error"]
        assert error["code"] == "insufficient_storage" and "gateway.db" in error["message"]
        filler.unlink()
        assert (await client.post(f"{gateway.url}/admin/keys", json={"name": "b"}, headers=admin)).status_code == 201


async def test_calls_process_during_a_database_outage_names_the_database(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    from aoai_gateway.calls.pipeline import Pipeline
    from aoai_gateway.calls.sources import LocalSource
    from aoai_gateway.calls.store import CallStore
    from aoai_gateway.config.calls import CallsSettings

    db, _ = await fresh_database(postgres)
    recording = tmp_path / "rec-07.ogg"
    recording.write_bytes(b"OggS" + bytes(1000))
    source = LocalSource(str(tmp_path))
    (item,) = await source.scan()
    # The models are never reached: the claim is the first thing that needs the database.
    pipeline = Pipeline(CallStore(db, "test", 60), models=None, extractor=None, settings=CallsSettings())  # type: ignore[arg-type]
    postgres.stop()
    try:
        outcome = await pipeline.process(source, item)
    finally:
        postgres.start()
        await db.close()
    assert outcome.kind == "failed" and outcome.error is not None
    assert "database failed, not rec-07.ogg" in outcome.error and "PostgreSQL 127.0.0.1" in outcome.error
    assert "cannot read" not in outcome.error
