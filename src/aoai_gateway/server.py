"""Running the gateway under an ASGI server, chosen by name (`server.engine`) from a registry.

    serve(settings, config_path="config.yaml")

uvicorn (httptools + uvloop) is the default; granian is the measured alternative (bench/README.md). Either way
SIGTERM stops accepting, lets in-flight requests and streams finish for up to `server.drain_seconds`, then
closes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from .app import create_app
from .config import Settings, load_settings
from .http.asgi import ASGIApp
from .logs import configure_logging

_CONFIG_ENV = "AOAI_GATEWAY__CONFIG_PATH"


def _uvicorn(settings: Settings, config_path: str | None) -> None:
    import uvicorn

    config = uvicorn.Config(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=int(settings.server.drain_seconds),
    )
    uvicorn.Server(config).run()


def _granian(settings: Settings, config_path: str | None) -> None:
    from granian import Granian

    # Granian imports the app in its worker process: hand the config path over, the environment carries the rest.
    if config_path:
        os.environ[_CONFIG_ENV] = config_path
    Granian(
        "aoai_gateway.server:granian_app",
        address=settings.server.host,
        port=settings.server.port,
        interface="asgi",  # type: ignore[arg-type]
        factory=True,
        workers=1,
        loop="uvloop",  # type: ignore[arg-type]
        log_access=False,
        workers_kill_timeout=int(settings.server.drain_seconds) or None,
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
