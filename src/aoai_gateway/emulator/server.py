"""Run the emulator with uvicorn.

    serve(EmulatorSettings.load("emulator.yaml"), host="127.0.0.1", port=8081)   # blocks until Ctrl-C

uvloop and httptools are used where installed (uvicorn[standard] brings both on Linux and macOS), the
pure-Python loop and parser otherwise; the access log is off because load tests would drown in it.
"""

from __future__ import annotations

import importlib.util

import uvicorn

from .app import create_app
from .settings import EmulatorSettings

__all__ = ["build_server", "serve"]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def build_server(settings: EmulatorSettings, host: str, port: int, *, log_level: str = "info") -> uvicorn.Server:
    """A configured, not yet started uvicorn server (tests run it on their own socket in a thread)."""
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        ws="websockets-sansio",  # the Realtime API (realtime.py)
        ws_max_size=64 * 1024 * 1024,
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=log_level,
        # Streams held open by `timeout` faults must not keep a stopping server alive for long.
        timeout_graceful_shutdown=5,
        # Idle keep-alive connections stay open for minutes, as behind Azure's load balancers (4 minutes by
        # default), not uvicorn's 5 s: clients pooling connections for less never meet a closing one.
        timeout_keep_alive=240,
    )
    return uvicorn.Server(config)


def serve(settings: EmulatorSettings, host: str, port: int) -> None:
    """Serve until interrupted."""
    build_server(settings, host, port).run()
