"""Real servers for tests: any ASGI app under uvicorn on a loopback socket, in a background thread.

with AsgiServer(app) as server:
    httpx.get(server.url + "/healthz")
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from aoai_gateway.config import ServerSettings
from aoai_gateway.server import uvicorn_options

# How long a server or a process may take to become ready before a test gives up. A bound on a hang, not an
# expectation: starts take well under a second on an idle machine, and many times that on a busy 2-core one.
START_SECONDS = 120.0

T = TypeVar("T")


def wait_until(
    ready: Callable[[], bool],
    what: str,
    *,
    alive: Callable[[], bool] = lambda: True,
    output: Callable[[], str] = lambda: "",
    timeout: float = START_SECONDS,
) -> None:
    """Poll `ready` until it holds; RuntimeError naming `what` (and its `output`) if `alive` fails or time runs out.

    wait_until(lambda: server.started, "the test server", alive=thread.is_alive)
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if not alive():
            raise RuntimeError(f"{what} stopped before it was ready{_said(output())}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout:g}s (an overloaded machine?){_said(output())}")
        time.sleep(0.02)


def _said(output: str) -> str:
    return f"; its output:\n{output.strip()}" if output.strip() else ""


class AsgiServer:
    """`server`: the connection limits, as `aoai-gateway serve` applies them (defaults unless given)."""

    def __init__(self, app: Any, server: ServerSettings | None = None, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options = {
            **uvicorn_options(server or ServerSettings()),
            "loop": "asyncio",
            "timeout_graceful_shutdown": 2,
            **config,
        }
        self._server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> AsgiServer:
        self._thread.start()
        wait_until(lambda: self._server.started, "the test server", alive=self._thread.is_alive)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_environ() -> dict[str, str]:
    """This environment for a child `python -m aoai_gateway`, PYTHONPATH made absolute: a child started in another
    directory must import the source tree under test (`PYTHONPATH=src pytest`), not an installed copy."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def answers(url: str) -> bool:
    """Whether `url` answers 200 now (a refused or reset connection is a no)."""
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Wait until `url` answers 200, with a generous bound; fail at once, with the log, if `process` exits."""
    wait_until(
        lambda: answers(url),
        url,
        alive=lambda: process.poll() is None,
        output=lambda: log.read_text(errors="replace") if log is not None and log.exists() else "",
    )


async def lifespan_done(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """For the tests' small ASGI upstreams: answer a lifespan scope whole; True when `scope` was one."""
    if scope["type"] != "lifespan":
        return False
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
    return True


async def whole_body(receive: Any) -> bytes:
    """The request body of a test upstream, every message of it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 60.0) -> T:
    """`read()` again until `done` holds of what it gave, then that; the last read once `timeout` passes (the
    caller's assertion then says what was wrong). For what arrives with a batch, like the usage ledger's flush.

    rows = await eventually(lambda: usage_report(db, by="key"), lambda rows: len(rows) == 2)
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)
