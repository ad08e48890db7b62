"""A recording HTTP server for webhook tools: it keeps every request and answers by path.

/lights  -> 200 {"done": true, "got": <the JSON body>}     /search -> 200 text, the query echoed
/broken  -> 500 {"error": "boom"}                            /hang   -> never answers (a timeout)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..servers import lifespan_done, whole_body


@dataclass
class HookRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hooks:
    requests: list[HookRequest] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await lifespan_done(scope, receive, send):
            return
        body = await whole_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = HookRequest(scope["method"], scope["path"], scope["query_string"].decode(), headers, body)
        self.requests.append(seen)
        if scope["path"] == "/hang":
            await asyncio.Event().wait()  # until the server shuts down: the tool's timeout must end the wait
        if scope["path"] == "/broken":
            await _answer(send, 500, b'{"error": "boom"}', b"application/json")
        elif scope["path"] == "/search":
            await _answer(send, 200, f"results for {seen.query}".encode(), b"text/plain")
        else:
            got = orjson.loads(body) if body else None
            await _answer(send, 200, orjson.dumps({"done": True, "got": got}), b"application/json")


async def _answer(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})
