"""Path routing for the gateway: exact paths by dict lookup, patterns only where a path carries names.

router = Router()
router.add("/v1/chat/completions", ["POST"], handler)
sockets = SocketRouter(); sockets.add("/v1/realtime", session)      # WebSocket paths: exact, no methods
router.add("/v1/models/{model:path}", ["GET"], handler)
route, params = router.match("POST", "/v1/chat/completions")
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..errors import MethodNotAllowed, RouteNotFound
from .asgi import Send
from .request import Request
from .websocket import WebSocket

Handler = Callable[[Request, Send, dict[str, str]], Awaitable[None]]
SocketHandler = Callable[[WebSocket], Awaitable[None]]

_PARAM = re.compile(r"{(\w+)(:path)?}")


@dataclass(frozen=True, slots=True)
class Route:
    template: str
    methods: frozenset[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._patterns: list[tuple[re.Pattern[str], Route]] = []

    def add(self, template: str, methods: Iterable[str], handler: Handler) -> None:
        route = Route(template, frozenset(methods), handler)
        if "{" not in template:
            self._exact[template] = route
            return
        regex = _PARAM.sub(
            lambda m: f"(?P<{m[1]}>.+)" if m[2] else f"(?P<{m[1]}>[^/]+)",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        self._patterns.append((re.compile(f"^{regex}$"), route))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for `path` and its parameters; `RouteNotFound` or `MethodNotAllowed` otherwise."""
        route = self._exact.get(path)
        params: dict[str, str] = {}
        if route is None:
            for regex, candidate in self._patterns:
                found = regex.match(path)
                if found:
                    route, params = candidate, found.groupdict()
                    break
            else:
                raise RouteNotFound(method, path)
        if method not in route.methods:
            raise MethodNotAllowed(method, path, route.methods)
        return route, params


class SocketRouter:
    """The WebSocket routes: exact paths (a WebSocket handshake is always a GET)."""

    def __init__(self) -> None:
        self._routes: dict[str, SocketHandler] = {}

    def add(self, path: str, handler: SocketHandler) -> None:
        self._routes[path] = handler

    def match(self, path: str) -> SocketHandler:
        """The handler for `path`; `RouteNotFound` otherwise."""
        handler = self._routes.get(path)
        if handler is None:
            raise RouteNotFound("GET", path)
        return handler
