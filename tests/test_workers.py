"""`server.workers`: several processes of one `aoai-gateway serve` on one port, sharing limits through Redis."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from aoai_gateway.config import ConfigError, load_settings
from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

from .conftest import EMULATOR_KEY
from .keyed import fresh_minute
from .servers import AsgiServer, child_environ, free_port, wait_for_http


def served_pids(log: Path) -> set[int]:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return {line["pid"] for line in lines if line.get("logger") == "aoai_gateway.access"}


async def test_two_workers_share_the_port_and_one_limit(
    redis_url: str, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "auth": "keys",
                "redis_url": redis_url,
                "data_dir": str(tmp_path / "data"),
                "server": {"workers": 2},
                "deployments": [{"model": "gpt-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}],
            }
        )
    )
    db = await connect_database(f"sqlite:///{tmp_path / 'data' / 'gateway.db'}")
    await migrate(db)
    _, secret = await KeyStore(db).create(KeySpec("workers", limits=Limits(rpm=25)))
    await db.close()
    fresh_minute(margin=15)  # the workers start within it
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=out,
            env=child_environ(),
        )
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.to_thread(wait_for_http, f"{url}/readyz", process, log)
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
            headers = {"authorization": f"Bearer {secret}"}
            responses = await asyncio.gather(
                *(client.post(f"{url}/v1/chat/completions", json=body, headers=headers) for _ in range(60))
            )
        # Which worker accepts a connection is the kernel's choice: fresh connections until both have served one.
        for _ in range(100):
            await asyncio.sleep(0.15)  # the access log is written every 100 ms
            if len(served_pids(log)) == 2:
                break
            httpx.get(f"{url}/healthz", timeout=5)
        pids = served_pids(log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 25 and statuses.count(429) == 35, statuses
    text = log.read_text()
    assert len(pids) == 2 and process.pid not in pids, text
    assert text.count('"drained: ') == 2 and "all 2 worker processes stopped" in text


def test_workers_with_keys_need_redis(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"auth": "keys", "server": {"workers": 2}}))
    with pytest.raises(ConfigError, match=r"server.workers: 2 with auth: keys needs redis_url"):
        load_settings(config, {})
    config.write_text(yaml.safe_dump({"auth": "keys", "server": {"workers": 2}, "redis_url": "redis://r:6379/0"}))
    assert load_settings(config, {}).server.workers == 2


def test_a_worker_that_cannot_start_stops_serve(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    # Valid settings the parent accepts, but a database no worker can open: each one fails in its start-up.
    config.write_text(
        yaml.safe_dump(
            {
                "auth": "keys",
                "redis_url": "redis://127.0.0.1:6379/15",
                "database_url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'gateway.db'}",
                "server": {"workers": 2, "port": free_port()},
                "deployments": [{"model": "gpt-4o", "endpoint": "http://127.0.0.1:9", "api_key": "k"}],
            }
        )
    )
    (tmp_path / "missing").write_text("a file where a directory should be")
    result = subprocess.run(
        [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config)],
        capture_output=True,
        timeout=60,
        env=child_environ(),
    )
    assert result.returncode == 1, result.stderr.decode()
    assert "could not start the gateway" in result.stderr.decode().splitlines()[-1]
