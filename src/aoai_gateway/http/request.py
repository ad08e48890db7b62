"""A thin view over an ASGI HTTP scope: headers, query, and a size-capped body.

request = Request(scope, receive)
body = await request.body(limit=settings.limits.max_json_bytes)
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import InvalidRequest, PayloadTooLarge
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
        """The whole body, or `PayloadTooLarge` as soon as it is known to exceed `limit` bytes."""
        declared = self.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise InvalidRequest("Content-Length header is not a number.")
            if int(declared) > limit:
                raise PayloadTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ClientDisconnected(Exception):
    """The client went away before its request was complete; nothing can be answered."""
