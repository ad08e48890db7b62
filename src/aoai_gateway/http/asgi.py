"""ASGI type aliases shared by the gateway's own small HTTP layer."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]


SERVER_HOOKS = "aoai.server"


class ServerHooks:
    """What the gateway's own server protocol (http/protocol.py) offers a request beyond ASGI, as
    `scope["extensions"][SERVER_HOOKS]`; absent under other servers and for in-process calls.

    hooks.on_disconnect = task.cancel   # called if the connection is lost before the response completed
    if not hooks.push(chunk): ...       # a piece of body written now, no await (after the head went out with
                                        # `send`); False: the client's buffer is full until `on_writable` is called

    The response writer is held weakly: the scope holds these hooks and the writer holds the scope, and a
    reference cycle per request would outlive the request once the collector's policy froze it (heap.py).
    """

    __slots__ = ("_writer", "on_disconnect", "on_writable")

    def __init__(self, writer: BodyWriter) -> None:
        self._writer = weakref.ref(writer)
        self.on_disconnect: Callable[[], object] | None = None
        self.on_writable: Callable[[], object] | None = None

    def push(self, body: bytes) -> bool:
        writer = self._writer()
        return True if writer is None else writer.push(body)


class BodyWriter(Protocol):
    def push(self, body: bytes) -> bool:
        """Write a piece of the body now; False when the client's buffer is full."""
