"""The task queue end to end: `calls process|watch --queue` and `calls worker` as real processes, on real RabbitMQ
and Redis, with the emulator standing in for the models.

Every test has its own queue (AOAI_GATEWAY_CALLS_QUEUE_NAME), deleted afterwards, its own emulator (whose request
counts are the bill) and its own SQLite store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from aoai_gateway.calls.queue import open_queue
from aoai_gateway.config import ConfigError
from aoai_gateway.config.calls import CallsSettings
from aoai_gateway.emulator import EmulatorSettings
from aoai_gateway.emulator import create_app as create_emulator

from ..conftest import EMULATOR_KEY
from ..servers import START_SECONDS, AsgiServer
from ..services import REDIS, require

AUDIO = Path(__file__).parent.parent / "speech" / "audio"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


# -- fixtures: services, queue names, recordings, config, processes


@pytest.fixture
def queue_name() -> str:
    return f"aoai-calls-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def rabbitmq(queue_name: str) -> Iterator[str]:
    require("RabbitMQ", "127.0.0.1", 5672)
    yield RABBITMQ
    import pika  # type: ignore[import-untyped]

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    try:
        channel = connection.channel()
        for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


@pytest.fixture
def redis_queue(queue_name: str) -> Iterator[str]:
    require("Redis", "127.0.0.1", 6379)
    yield REDIS
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"*{queue_name}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """Seven recordings, one of them twice under another name: eight files, seven calls."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    for path in sorted(AUDIO.iterdir()):
        if path.suffix in {".wav", ".mp3", ".flac", ".ogg", ".webm", ".m4a", ".mp4"}:
            shutil.copy(path, folder / path.name)
    shutil.copy(AUDIO / "report.wav", folder / "report-again.wav")
    return folder


def start_emulator(chat_latency_ms: int = 0) -> AsgiServer:
    settings = EmulatorSettings.model_validate(
        {"api_keys": [EMULATOR_KEY], "deployments": [{"name": "gpt-4o", "latency_ms": chat_latency_ms}]}
    )
    return AsgiServer(create_emulator(settings)).__enter__()


SlowBatch = tuple[AsgiServer, list[str]]


@pytest.fixture
def slow_batch(tmp_path: Path, recordings: Path, rabbitmq: str, processes: Processes) -> Iterator[SlowBatch]:
    """The recordings already sent to RabbitMQ, an emulator taking 1 s a chat, and the `calls worker` arguments."""
    slow = start_emulator(chat_latency_ms=1000)
    try:
        config = str(write_config(tmp_path, slow.url))
        assert processes.run("process", str(recordings), "--config", config, "--queue", rabbitmq).returncode == 0
        yield slow, ["worker", "--config", config, "--queue", rabbitmq, "--threads", "2"]
    finally:
        slow.__exit__(None, None, None)


@pytest.fixture
def emulator() -> Iterator[AsgiServer]:
    server = start_emulator()
    yield server
    server.__exit__(None, None, None)


def write_config(folder: Path, emulator_url: str, calls: str = "", database_url: str | None = None) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        f"""
deployments:
  - {{model: gpt-4o, deployment: gpt-4o, endpoint: "{emulator_url}", api_key: {EMULATOR_KEY}}}
  - {{model: whisper-1, deployment: whisper, endpoint: "{emulator_url}", api_key: {EMULATOR_KEY}}}
logging:
  access_log: false
routing: {{max_attempts: 1, default_cooldown_seconds: 0, breaker: {{failure_threshold: 100}}}}
calls:
  database_url: "{database_url or f"sqlite:///{folder / 'calls.db'}"}"
  lease_seconds: 2
  settle_seconds: 0
{calls}""",
        encoding="utf-8",
    )
    return config


class Processes:
    """`aoai-gateway calls ...` subprocesses with their output in files; all killed and reaped at the end."""

    def __init__(self, folder: Path, queue_name: str) -> None:
        self.folder = folder
        self.env = {**os.environ, "AOAI_GATEWAY_CALLS_QUEUE_NAME": queue_name, "PYTHONUNBUFFERED": "1"}
        self.started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def run(self, *args: str, timeout: float = START_SECONDS) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aoai_gateway.cli", "calls", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"process-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway.cli", "calls", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append((process, log))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        index = [p for p, _ in self.started].index(process)
        return (self.folder / f"process-{index}.log").read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        for process, log in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            log.close()


@pytest.fixture
def processes(tmp_path: Path, queue_name: str) -> Iterator[Processes]:
    started = Processes(tmp_path, queue_name)
    try:
        yield started
    finally:
        started.close()


# -- reading the outcome


def rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "calls.db"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute("SELECT id, status, attempts, lease_owner, document FROM calls")]
        except sqlite3.OperationalError:  # the first worker has not created the tables yet
            return []


def distinct_audio(folder: Path) -> set[str]:
    return {hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (an overloaded machine?)")
        time.sleep(0.05)


def outcomes_logged(processes: Processes, worker: subprocess.Popen[bytes], kind: str = r"\w+") -> int:
    """The worker's one line per message handled: `call 3f2a9c0d1e2b done (/path/a.wav, 1.2 s)`."""
    line = rf'"level":"info","logger":"aoai_gateway.calls","message":"call \S+ {kind} \('
    return len(re.findall(line, processes.output(worker)))


def chat_and_whisper_requests(emulator: AsgiServer) -> tuple[int, int]:
    stats = httpx.get(f"{emulator.url}/_emulator/stats").json()["deployments"]
    return stats.get("gpt-4o", {}).get("requests", 0), stats.get("whisper", {}).get("requests", 0)


def assert_all_done_once(folder: Path, recordings: Path) -> list[dict[str, Any]]:
    stored = rows(folder)
    assert sorted(row["id"] for row in stored) == sorted(distinct_audio(recordings))  # one row per audio
    assert {row["status"] for row in stored} == {"done"}
    assert all(row["document"] for row in stored)
    return stored


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(START_SECONDS)


# -- the tests


@pytest.mark.slow
def test_rabbitmq_process_then_one_worker_does_every_call_once(
    tmp_path: Path, recordings: Path, rabbitmq: str, emulator: AsgiServer, processes: Processes
) -> None:
    config = str(write_config(tmp_path, emulator.url))

    sent = processes.run("process", str(recordings), "--config", config, "--queue", rabbitmq)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "enqueued 8 call(s) to amqp://guest:***@127.0.0.1:5672/"
    assert rows(tmp_path) == []  # nothing processed by the command itself

    worker = processes.start("worker", "--config", config, "--queue", rabbitmq, "--threads", "3")
    wait_until(lambda: outcomes_logged(processes, worker) == 8, "eight messages handled")
    assert_all_done_once(tmp_path, recordings)
    assert outcomes_logged(processes, worker, "done") == 7
    assert outcomes_logged(processes, worker, "duplicate") == 1
    output = processes.output(worker)
    assert chat_and_whisper_requests(emulator) == (7, 7)  # the duplicate cost nothing
    assert "emulator-key" not in output and "guest:guest" not in output

    assert stop(worker) == 0
    assert '"worker: stopped"' in processes.output(worker)


@pytest.mark.slow
def test_rabbitmq_worker_killed_mid_batch_loses_nothing_and_pays_twice_only_for_calls_in_flight(
    tmp_path: Path, recordings: Path, slow_batch: SlowBatch, processes: Processes
) -> None:
    slow, worker = slow_batch
    doomed, survivor = processes.start(*worker), processes.start(*worker)

    def holds(process: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
        return [r for r in rows(tmp_path) if r["status"] == "processing" and f":{process.pid}:" in r["lease_owner"]]

    def mid_batch() -> bool:
        return any(r["status"] == "done" for r in rows(tmp_path)) and bool(holds(doomed))

    while True:  # freeze it first, so that what it holds cannot change between looking and killing
        wait_until(mid_batch, "a call done and another in flight in the first worker")
        doomed.send_signal(signal.SIGSTOP)
        in_flight = len(holds(doomed))
        if in_flight:
            break
        doomed.send_signal(signal.SIGCONT)
    doomed.kill()
    doomed.wait(10)
    fresh = processes.start(*worker)

    def settled() -> bool:
        stored = rows(tmp_path)
        return len(stored) == 7 and all(r["status"] == "done" for r in stored)

    wait_until(settled, "every call done after the kill")
    stored = assert_all_done_once(tmp_path, recordings)
    assert sum(r["attempts"] for r in stored) <= 7 + in_flight
    chat, whisper = chat_and_whisper_requests(slow)
    assert 7 <= chat <= 7 + in_flight
    assert 7 <= whisper <= 7 + in_flight
    assert stop(survivor) == 0 and stop(fresh) == 0


@pytest.mark.slow
def test_sigterm_hands_calls_in_flight_back_at_once(
    tmp_path: Path, recordings: Path, slow_batch: SlowBatch, processes: Processes
) -> None:
    _, worker = slow_batch
    first = processes.start(*worker)
    wait_until(lambda: any(r["status"] == "processing" for r in rows(tmp_path)), "a call in flight")

    started = time.monotonic()
    assert stop(first) == 0
    assert time.monotonic() - started < 5  # did not wait for the calls to finish
    assert not [r for r in rows(tmp_path) if r["status"] == "processing"]  # released, not left to expire

    second = processes.start(*worker[:-1], "4")
    wait_until(lambda: outcomes_logged(processes, second) == 8 - outcomes_logged(processes, first), "the rest")
    assert_all_done_once(tmp_path, recordings)
    assert stop(second) == 0
    assert "Traceback" not in processes.output(first) + processes.output(second)


@pytest.mark.slow
def test_back_off_waits_in_the_broker_and_calls_retry_sends_failed_calls_again(
    tmp_path: Path, rabbitmq: str, emulator: AsgiServer, processes: Processes
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for name in ("weather.mp3", "office.ogg"):
        shutil.copy(AUDIO / name, recordings / name)
    config = str(write_config(tmp_path, emulator.url, "  max_attempts: 2\n  retry_base_seconds: 0.5\n"))
    faults = f"{emulator.url}/_emulator/faults"
    httpx.post(faults, json={"deployment": "whisper", "faults": [{"kind": "500"}]}).raise_for_status()

    assert processes.run("process", str(recordings), "--config", config, "--queue", rabbitmq).returncode == 0
    worker = processes.start("worker", "--config", config, "--queue", rabbitmq)

    def out_of_attempts() -> bool:
        stored = rows(tmp_path)
        return len(stored) == 2 and all(r["status"] == "failed" and r["attempts"] == 2 for r in stored)

    wait_until(out_of_attempts, "both calls failed twice")  # the second attempt came from a delayed message
    wait_until(lambda: outcomes_logged(processes, worker) == 4, "four outcomes")
    assert outcomes_logged(processes, worker, "retry") == 2
    assert outcomes_logged(processes, worker, "failed") == 2

    httpx.delete(faults).raise_for_status()
    retried = processes.run("retry", "--config", config, "--queue", rabbitmq)
    assert retried.returncode == 0, retried.stderr
    assert "re-queued 2 failed call(s)" in retried.stdout
    wait_until(lambda: {r["status"] for r in rows(tmp_path)} == {"done"}, "both calls done after `calls retry`")
    assert_all_done_once(tmp_path, recordings)
    assert stop(worker) == 0


@pytest.mark.slow
def test_redis_queue_two_workers_results_in_postgresql(
    tmp_path: Path, recordings: Path, redis_queue: str, emulator: AsgiServer, processes: Processes, postgres_url: str
) -> None:
    # The scale-out shape: workers on several machines (here two processes) share one PostgreSQL.
    config = str(write_config(tmp_path, emulator.url, database_url=postgres_url))
    sent = processes.run("process", str(recordings), "--config", config, "--queue", redis_queue)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"enqueued 8 call(s) to {redis_queue}"
    postgres(postgres_url, "DELETE FROM calls", "DELETE FROM call_files")  # the session's database is shared

    workers = [processes.start("worker", "--config", config, "--queue", redis_queue) for _ in range(2)]
    handled = lambda: sum(outcomes_logged(processes, worker) for worker in workers)  # noqa: E731
    wait_until(lambda: handled() == 8, "eight messages handled")
    stored = postgres(postgres_url, "SELECT id, status, document->'fields' AS fields FROM calls")
    assert sorted(row["id"] for row in stored) == sorted(distinct_audio(recordings))
    assert {row["status"] for row in stored} == {"done"} and all(row["fields"] for row in stored)
    assert chat_and_whisper_requests(emulator) == (7, 7)
    assert [stop(worker) for worker in workers] == [0, 0]


def postgres(url: str, *statements: str) -> list[dict[str, Any]]:
    """Run statements on PostgreSQL from this synchronous test; the last one's rows."""
    import asyncpg  # type: ignore[import-untyped]

    from ..conftest import run_in_thread

    found: list[dict[str, Any]] = []

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            for statement in statements:
                found[:] = [dict(row) for row in await connection.fetch(statement)]
        finally:
            await connection.close()

    run_in_thread(run())
    return found


def test_watch_once_sends_each_version_once(
    tmp_path: Path, recordings: Path, rabbitmq: str, emulator: AsgiServer, processes: Processes
) -> None:
    config = str(write_config(tmp_path, emulator.url))
    watch = ["watch", str(recordings), "--once", "--config", config, "--queue", rabbitmq]

    first = processes.run(*watch)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "enqueued 8 call(s) to amqp://guest:***@127.0.0.1:5672/"
    again = processes.run(*watch)
    assert again.stdout.strip() == "enqueued 0 call(s) to amqp://guest:***@127.0.0.1:5672/"

    (recordings / "weather.mp3").write_bytes((recordings / "weather.mp3").read_bytes() + b"\0")  # a new version
    changed = processes.run(*watch)
    assert changed.stdout.strip() == "enqueued 1 call(s) to amqp://guest:***@127.0.0.1:5672/"


def test_an_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"amqp://\.\.\. \(RabbitMQ\) or redis://"):
        open_queue(CallsSettings(queue_url="kafka://127.0.0.1:9092"))
    assert CallsSettings().queue_name == "aoai-calls"


def test_unreachable_broker_is_reported_without_the_password(
    tmp_path: Path, emulator: AsgiServer, processes: Processes
) -> None:
    from ..servers import free_port

    config = str(write_config(tmp_path, emulator.url))
    url = f"redis://:secret-pw@127.0.0.1:{free_port()}/0"
    result = processes.run("process", str(tmp_path), "--config", config, "--queue", url)
    assert result.returncode == 1
    assert "cannot reach the queue at redis://:***@127.0.0.1:" in result.stderr
    assert "secret-pw" not in result.stderr + result.stdout
