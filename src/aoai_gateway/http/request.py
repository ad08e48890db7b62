"""A thin view over an ASGI HTTP scope: headers, query, a size-capped body, and the request's typed record.

request = Request(scope, receive, exchange)
body = await request.body(limit=settings.limits.max_json_bytes)
request.exchange.model = "gpt-4o"          # what the access log, metrics and ledger will read
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..exchange import Exchange
from .asgi import Receive, Scope


class Request:
    __slots__ = ("_headers", "exchange", "method", "path", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive, exchange: Exchange | None = None) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope.get("method", "GET")  # a WebSocket handshake is a GET
        self.path: str = scope["path"]
        self._headers: dict[str, str] | None = None
        # What was asked and what happened, filled in by the layers the request goes through.
        self.exchange = exchange if exchange is not None else Exchange("", self.method, self.path, 0.0)

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
