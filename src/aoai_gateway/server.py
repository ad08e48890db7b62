"""Running the gateway under an ASGI server, chosen by name (`server.engine`) from a registry.

    serve(settings, config_path="config.yaml")

uvicorn (httptools + uvloop) is the default; granian is the measured alternative (bench/README.md). Either way
SIGTERM stops accepting, lets in-flight requests and streams finish for up to `server.drain_seconds`, then
closes.

Connection limits (`server.max_header_bytes` ... `server.max_connections`) are whole under uvicorn, through
`http/protocol.py`. Granian (2.8) has its own knobs for some of them, answering 431 with an empty body:
- `header_timeout_seconds` -> `http1_settings.header_read_timeout` (hyper's; it closes without a 408, and its
  timer also runs between keep-alive requests, so idle connections close after it too);
- `max_header_bytes` -> `http1_settings.max_buffer_size` (hyper's read buffer, at least 8 KiB);
- `max_headers`: hyper's fixed 100, not settable;
- `keepalive_timeout_seconds`: no setting (keep-alive is on/off); see `header_timeout_seconds`;
- `max_connections` -> `backpressure` (a cap on requests in flight: excess connections wait, no 503);
- `body_idle_timeout_seconds`: no equivalent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from .app import create_app
from .config import ServerSettings, Settings, load_settings
from .extras import needs
from .http.asgi import ASGIApp
from .http.protocol import guarded_protocol
from .logs import configure_logging

_CONFIG_ENV = "AOAI_GATEWAY__CONFIG_PATH"


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """`uvicorn.Config(app, **uvicorn_options(settings.server))`: the gateway's listener, limits included."""
    return {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": guarded_protocol(server),
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "server_header": False,
        # The protocol applies the exact (float) keep-alive timeout; this is uvicorn's own record of it.
        "timeout_keep_alive": max(1, round(server.keepalive_timeout_seconds)),
        "timeout_graceful_shutdown": int(server.drain_seconds),
    }


def _uvicorn(settings: Settings, config_path: str | None) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(create_app(settings), **uvicorn_options(settings.server))).run()


def _granian(settings: Settings, config_path: str | None) -> None:
    with needs("granian", "server.engine: granian"):
        from granian import Granian
        from granian.http import HTTP1Settings

    server = settings.server

    # Granian imports the app in its worker process: hand the config path over, the environment carries the rest.
    if config_path:
        os.environ[_CONFIG_ENV] = config_path
    Granian(
        "aoai_gateway.server:granian_app",
        address=server.host,
        port=server.port,
        interface="asgi",  # type: ignore[arg-type]
        factory=True,
        workers=1,
        loop="uvloop",  # type: ignore[arg-type]
        log_access=False,
        workers_kill_timeout=int(server.drain_seconds) or None,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(server.header_timeout_seconds * 1000)),
            max_buffer_size=max(8192, server.max_header_bytes),
        ),
        backpressure=server.max_connections,
    ).serve()


def granian_app() -> ASGIApp:
    """Factory for granian's worker: reload the same settings there."""
    settings = load_settings(os.environ.get(_CONFIG_ENV))
    configure_logging(settings.logging)
    return create_app(settings)


SERVER_ENGINES: dict[str, Callable[[Settings, str | None], None]] = {
    "uvicorn": _uvicorn,
    "granian": _granian,
}


def serve(settings: Settings, config_path: str | None = None) -> None:
    configure_logging(settings.logging)
    logging.getLogger("aoai_gateway").info(
        "aoai-gateway listening on http://%s:%d%s with %d deployments (%s, %s)",
        settings.server.host,
        settings.server.port,
        settings.api_base,
        len(settings.deployments),
        settings.server.engine,
        settings.upstream.client,
    )
    SERVER_ENGINES[settings.server.engine](settings, config_path)
