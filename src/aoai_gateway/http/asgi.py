"""ASGI type aliases shared by the gateway's own small HTTP layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]


DISCONNECT_EXTENSION = "aoai.disconnect"


class DisconnectSignal:
    """Calls `callback` (when set) if the connection is lost before the response completed.

    signal = scope.get("extensions", {}).get(DISCONNECT_EXTENSION)   # None under other servers
    signal.callback = task.cancel
    """

    __slots__ = ("callback",)

    def __init__(self) -> None:
        self.callback: Callable[[], object] | None = None
