"""Limits are exact: N concurrent requests against a limit of L admit exactly L, in one process and across
several processes sharing Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from aoai_gateway.access import Check, Limiter, MemoryLimiter, RedisLimiter
from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

from .conftest import EMULATOR_KEY
from .keyed import fresh_minute
from .servers import AsgiServer, free_port, wait_for_http


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    made = RedisLimiter.from_url(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


def counter() -> str:
    return f"test-{uuid.uuid4().hex}"


async def test_exact_admission_under_concurrency(limiter: Limiter) -> None:
    name = counter()
    results = await asyncio.gather(*(limiter.admit([Check(name, 37, 1, 60)]) for _ in range(200)))
    assert sum(result is None for result in results) == 37
    assert (await limiter.read([name])) == [37]


async def test_all_or_nothing_and_settlement(limiter: Limiter) -> None:
    requests, tokens = counter(), counter()
    assert await limiter.admit([Check(requests, 10, 1, 60), Check(tokens, 100, 80, 60)]) is None
    refusal = await limiter.admit([Check(requests, 10, 1, 60), Check(tokens, 100, 80, 60)])
    assert refusal is not None and refusal.check.counter == tokens and refusal.used == 80
    assert await limiter.read([requests, tokens]) == [1, 80]  # the refused admission changed nothing
    await limiter.adjust([(tokens, 25 - 80, 60)])  # the call used 25 of its 80 reserved
    assert await limiter.read([tokens]) == [25]
    assert await limiter.admit([Check(tokens, 100, 75, 60)]) is None


def test_exact_across_redis_clients_in_parallel_threads(redis_url: str) -> None:
    name = counter()
    admitted: list[int] = []

    def worker() -> None:
        async def run() -> int:
            limiter = RedisLimiter.from_url(redis_url)
            try:
                results = await asyncio.gather(*(limiter.admit([Check(name, 50, 1, 60)]) for _ in range(60)))
                return sum(r is None for r in results)
            finally:
                await limiter.close()

        admitted.append(asyncio.run(run()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(admitted) == 50 and len(admitted) == 4


async def test_two_gateway_processes_share_one_limit(
    redis_url: str, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "auth": "keys",
                "redis_url": redis_url,
                "data_dir": str(tmp_path / "data"),
                "logging": {"access_log": False},
                "deployments": [{"model": "gpt-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}],
            }
        )
    )
    db = await connect_database(f"sqlite:///{tmp_path / 'data' / 'gateway.db'}")
    await migrate(db)
    _, secret = await KeyStore(db).create(KeySpec("shared", limits=Limits(rpm=25)))
    fresh_minute()
    await db.close()
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(p)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        for p in ports
    ]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for port, process in zip(ports, processes, strict=True):
                await asyncio.to_thread(wait_for_http, f"http://127.0.0.1:{port}/readyz", process)
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"http://127.0.0.1:{ports[i % 2]}/v1/chat/completions",
                        json=body,
                        headers={"authorization": f"Bearer {secret}"},
                    )
                    for i in range(60)
                )
            )
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 25 and statuses.count(429) == 35, statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["x-ratelimit-limit-requests"] == "25"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
