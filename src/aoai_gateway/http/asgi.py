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


SERVER_HOOKS = "aoai.server"


class ServerHooks:
    """What the gateway's own server protocol (http/protocol.py) offers a request beyond ASGI, as
    `scope["extensions"][SERVER_HOOKS]`; absent under other servers and for in-process calls.

    hooks.on_disconnect = task.cancel   # called if the connection is lost before the response completed
    if not hooks.push(chunk): ...       # a piece of body written now, no await (after the head went out with
                                        # `send`); False: the client's buffer is full until `on_writable` is called
    """

    __slots__ = ("on_disconnect", "on_writable", "push")

    def __init__(self, push: Callable[[bytes], bool]) -> None:
        self.push = push
        self.on_disconnect: Callable[[], object] | None = None
        self.on_writable: Callable[[], object] | None = None
