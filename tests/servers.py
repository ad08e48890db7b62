"""Real servers for tests: any ASGI app under uvicorn on a loopback socket, in a background thread.

with AsgiServer(app) as server:
    httpx.get(server.url + "/healthz")
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from aoai_gateway.config import ServerSettings
from aoai_gateway.server import uvicorn_options


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
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
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
