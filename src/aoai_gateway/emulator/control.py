"""The emulator's own control API, under `/_emulator/`, for tests and load-test scripts (no key needed).

httpx.post(f"{base}/_emulator/faults", json={"deployment": "gpt-4o-deploy", "faults": [{"kind": "429"}]})

GET    /_emulator/health                      {"status": "ok"}
GET    /_emulator/faults                      configured fault lists, run-time overrides, seed
POST   /_emulator/faults                      {"deployment": "<name>" | "*", "faults": [FaultSpec, ...]}
                                              replaces that deployment's faults ("*": every deployment
                                              without its own override); [] switches faults off
DELETE /_emulator/faults[?deployment=<name>]  drops overrides (all of them: also restarts the seeded draws)
GET    /_emulator/stats                       {"total_requests", "deployments": {name: {requests, tokens,
                                              operations, statuses}}}
DELETE /_emulator/stats                       zeroes the counters
GET    /_emulator/script                      the chat turns still queued, per deployment
POST   /_emulator/script                      {"deployment": "<name>", "turns": [{"content"?, "tool_calls"?:
                                              [{"name", "arguments"}]}], "append"?}: the next chat completions
                                              of that deployment answer these turns in order (scripts.py)
DELETE /_emulator/script[?deployment=<name>]  drops queued turns
POST   /_emulator/reset                       all of the above, and scripted `responses` start over
GET    /_emulator/image.png                   the PNG that image URLs point at
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .deployments import DeploymentTable
from .errors import InvalidRequest
from .faults import ALL_DEPLOYMENTS, FaultBook
from .images import IMAGE_PATH, png_bytes
from .scripts import ScriptRequest
from .settings import FaultSpec
from .stats import RequestStats

__all__ = ["ControlAPI"]


class _FaultOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(default=ALL_DEPLOYMENTS, min_length=1)
    faults: list[FaultSpec]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class ControlAPI:
    """Routes over the emulator's run-time state."""

    def __init__(self, faults: FaultBook, stats: RequestStats, table: DeploymentTable) -> None:
        self._faults, self._stats, self._table = faults, stats, table

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/_emulator/health", self.health, methods=["GET"]),
            Route("/_emulator/faults", self.show_faults, methods=["GET"]),
            Route("/_emulator/faults", self.set_faults, methods=["POST"]),
            Route("/_emulator/faults", self.clear_faults, methods=["DELETE"]),
            Route("/_emulator/stats", self.show_stats, methods=["GET"]),
            Route("/_emulator/stats", self.clear_stats, methods=["DELETE"]),
            Route("/_emulator/script", self.show_script, methods=["GET"]),
            Route("/_emulator/script", self.set_script, methods=["POST"]),
            Route("/_emulator/script", self.clear_script, methods=["DELETE"]),
            Route("/_emulator/reset", self.reset, methods=["POST"]),
            Route(IMAGE_PATH, self.image, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def show_faults(self, request: Request) -> Response:
        return _json(self._faults.snapshot())

    async def set_faults(self, request: Request) -> Response:
        try:
            override = _FaultOverride.model_validate_json(await request.body())
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "body"
            error = InvalidRequest(
                f'{where}: {problem["msg"]}. Send {{"deployment": "<name>" or "*", "faults": '
                '[{"kind": "429" | "500" | "503" | "timeout" | "reset", ...}]}.',
                param=where,
            )
            return _json(error.body(), error.status)
        self._faults.override(override.deployment, override.faults)
        return _json(self._faults.snapshot())

    async def clear_faults(self, request: Request) -> Response:
        self._faults.reset(request.query_params.get("deployment"))
        return _json(self._faults.snapshot())

    async def show_script(self, request: Request) -> Response:
        return _json(self._table.scripts.snapshot())

    async def set_script(self, request: Request) -> Response:
        try:
            script = ScriptRequest.model_validate_json(await request.body())
            self._table.scripts.set(script)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "body"
            error = InvalidRequest(
                f'{where}: {problem["msg"]}. Send {{"deployment": "<name>", "turns": [{{"content": "...", '
                '"tool_calls": [{"name": "...", "arguments": {...}}]}]}.',
                param=where,
            )
            return _json(error.body(), error.status)
        except ValueError as exc:
            error = InvalidRequest(str(exc), param="turns")
            return _json(error.body(), error.status)
        return _json(self._table.scripts.snapshot())

    async def clear_script(self, request: Request) -> Response:
        self._table.scripts.reset(request.query_params.get("deployment"))
        return _json(self._table.scripts.snapshot())

    async def show_stats(self, request: Request) -> Response:
        return _json(self._stats.snapshot())

    async def clear_stats(self, request: Request) -> Response:
        self._stats.reset()
        return _json(self._stats.snapshot())

    async def reset(self, request: Request) -> Response:
        self._faults.reset()
        self._stats.reset()
        self._table.rewind()
        return _json({"status": "reset"})

    async def image(self, request: Request) -> Response:
        return Response(png_bytes(), media_type="image/png")
