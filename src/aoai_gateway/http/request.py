"""A thin view over an ASGI HTTP scope: headers, query, and a size-capped body.

request = Request(scope, receive)
body = await request.body(limit=settings.limits.max_json_bytes)
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .asgi import Receive, Scope


class Request:
    __slots__ = ("_headers", "method", "path", "receive", "scope", "state")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self._headers: dict[str, str] | None = None
        # Filled in by handlers for the access log: model, deployment, upstream timings.
        self.state: dict[str, object] = {}

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case header names; a repeated header keeps its last value."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]}
        return self._headers

    @property
    def query(self) -> list[tuple[str, str]]:
        raw: bytes = self.scope.get("query_string", b"")
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def body(self, limit: int) -> bytes:
        """The whole body in memory, or `PayloadTooLarge` as soon as it is known to exceed `limit` bytes."""
        from .spool import read_spooled  # one reading loop for both; spool.py imports this module

        body = await read_spooled(self, limit, in_memory=limit)
        assert isinstance(body, bytes)  # a body within `in_memory` comes back as bytes
        return body


class ClientDisconnected(Exception):
    """The client went away before its request was complete; nothing can be answered."""
