"""Assemble the emulator's ASGI app from its settings.

    app = create_app(EmulatorSettings.load("emulator.yaml"))   # serve with any ASGI server

All run-time state (fault overrides, counters, scripted-response positions) lives in the objects built
here and belongs to this app alone, so several emulators can run side by side in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from .control import ControlAPI
from .deployments import DeploymentTable
from .dispatch import OpenAIDispatcher
from .errors import InjectedReset
from .faults import FaultBook
from .realtime import RealtimeEndpoint
from .resources import ResourceAPI
from .settings import EmulatorSettings
from .stats import RequestStats

__all__ = ["create_app"]

# uvicorn logs through this logger when an app raises after the response started.
_SERVER_LOGGER = "uvicorn.error"


class _QuietInjectedResets(logging.Filter):
    """Drop the server's traceback for resets the emulator injects on purpose; keep every other one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedReset))


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    quiet = _QuietInjectedResets()
    logger = logging.getLogger(_SERVER_LOGGER)
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def create_app(settings: EmulatorSettings) -> Starlette:
    """The emulator as a Starlette app: the control API under /_emulator/, Azure's data plane elsewhere."""
    faults = FaultBook(settings)
    stats = RequestStats()
    table = DeploymentTable(settings)
    control = ControlAPI(faults, stats, table)
    dispatcher = OpenAIDispatcher(settings, table, faults, stats)
    # An ASGI app (not a function) as endpoint: Starlette hands it scope, receive and send untouched.
    resources = ResourceAPI(settings, table, stats, dispatcher)  # files and batches; the rest to the dispatcher
    realtime = RealtimeEndpoint(settings, table, faults, stats)
    routes = [*control.routes(), Route("/{path:path}", resources), WebSocketRoute("/{path:path}", realtime)]
    return Starlette(routes=routes, lifespan=_lifespan)
