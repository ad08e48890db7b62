"""What a turn tells its caller as it goes: one `TurnEvent` per stage (the HTTP API's server-sent events).

async def emit(event: TurnEvent) -> None:
    print(event.kind, event.data)      # transcript, tool_call, tool_result, confirmation_required,
                                       # reply_delta, reply, audio
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Emit", "TurnEvent"]


@dataclass(frozen=True, slots=True)
class TurnEvent:
    kind: str
    data: dict[str, Any]


Emit = Callable[[TurnEvent], Awaitable[None]]
