"""Private Redis and PostgreSQL servers a test may stop and start at will, on free ports in temporary folders.

    with PrivateRedis() as redis:           # redis.url; redis.stop(); redis.start() (empty again: no persistence)
    with PrivatePostgres() as postgres:     # postgres.url; postgres.stop(); postgres.start() (data kept)

The machine's shared services are never touched: these are our own processes, stopped by their PID (Redis) or
by their own data folder (`pg_ctl -D`). PostgreSQL refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pytest

from .servers import free_port, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateRedis:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="aoai-redis-")

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self._process
        wait_until(lambda: _listening(self.port), "private Redis", alive=lambda: process.poll() is None)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()  # as a crash: nothing saved, and nothing to save
            self._process.wait(30)
            self._process = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class PrivatePostgres:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL binaries are not in {PG_BIN}")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._dir = Path(tempfile.mkdtemp(prefix="aoai-pg-"))
        self._data = self._dir / "data"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self._dir, "postgres")
        self._run(PG_BIN / "initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, *command: object) -> None:
        subprocess.run([*self._as, *map(str, command)], check=True, capture_output=True, timeout=300)

    def start(self) -> None:
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(PG_BIN / "pg_ctl", "-D", self._data, "-o", options, "-l", self._dir / "log", "-w", "start")

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self._data, "-m", "fast", "-w", "stop")

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if (self._data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    """Poll a condition (a callable returning bool) generously; fail naming `what`."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)
