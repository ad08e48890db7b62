"""Scripted chat turns: what a deployment's next chat completions answer, queued by a test or a bench.

    POST /_emulator/script {"deployment": "chat-4o", "turns": [
        {"tool_calls": [{"name": "set_light", "arguments": {"room": "kitchen", "on": true}},
                        {"name": "get_time"}]},                       # two parallel calls in one answer
        {"content": "The kitchen light is on and it is noon."}]}     # the answer after the tool results

Each chat completion on that deployment takes the next turn, first in, first out; once the turns are used up the
deployment answers as it would without a script. `arguments` is an object (sent as its compact JSON) or a
string sent as it is, so a test can hand a client arguments that are not JSON at all. A turn may carry both
`content` and `tool_calls`, as models sometimes do. Scripts live in memory, per emulator app; `/_emulator/reset`
drops them.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ScriptBook", "ScriptRequest", "ScriptedToolCall", "ScriptedTurn"]

MAX_QUEUED = 10_000  # turns per deployment: a runaway bench loop must not grow the emulator without bound


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=256)]
    arguments: dict[str, Any] | Annotated[str, Field(max_length=1_000_000)] = Field(default_factory=dict)
    id: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()

    def call_id(self) -> str:
        return self.id or f"call_{os.urandom(12).hex()}"


class ScriptedTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: Annotated[str, Field(max_length=1_000_000)] | None = None
    tool_calls: Annotated[tuple[ScriptedToolCall, ...], Field(max_length=128)] = ()

    @model_validator(mode="after")
    def _says_something(self) -> ScriptedTurn:
        if self.content is None and not self.tool_calls:
            raise ValueError("a turn needs `content`, `tool_calls` or both")
        return self


class ScriptRequest(BaseModel):
    """`POST /_emulator/script`: replaces the deployment's queued turns, or adds to them with `append`."""

    model_config = ConfigDict(extra="forbid")

    deployment: Annotated[str, Field(min_length=1, max_length=256)]
    turns: Annotated[list[ScriptedTurn], Field(max_length=MAX_QUEUED)]
    append: bool = False


class ScriptBook:
    """Queued turns per deployment name."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[ScriptedTurn]] = {}

    def set(self, request: ScriptRequest) -> None:
        queue = self._queues.setdefault(request.deployment, deque())
        if not request.append:
            queue.clear()
        if len(queue) + len(request.turns) > MAX_QUEUED:
            raise ValueError(f"at most {MAX_QUEUED} turns may wait per deployment")
        queue.extend(request.turns)

    def next(self, deployment: str) -> ScriptedTurn | None:
        queue = self._queues.get(deployment)
        return queue.popleft() if queue else None

    def reset(self, deployment: str | None = None) -> None:
        if deployment is None:
            self._queues.clear()
        else:
            self._queues.pop(deployment, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            name: [turn.model_dump(exclude_defaults=True) for turn in queue]
            for name, queue in self._queues.items()
            if queue
        }
