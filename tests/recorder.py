"""A real upstream that records what reaches it, for asserting exactly what the gateway sends.

recorder = Recorder()
with AsgiServer(recorder) as upstream: ...
recorder.requests[-1].headers["api-key"]
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .servers import lifespan_done, whole_body


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Recorder:
    requests: list[Seen] = field(default_factory=list)
    stream_cancelled: asyncio.Event | None = None
    stream_finished: bool = False
    chunk_delay: float = 0.05
    chunks: int = 40

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await lifespan_done(scope, receive, send):
            return
        body = await whole_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            Seen(scope["method"], scope["path"], scope["query_string"].decode(), headers, list(scope["headers"]), body)
        )
        if b'"stream":true' in body.replace(b" ", b""):
            await self._stream(receive, send)
            return
        reply = b'{"id":"x","object":"chat.completion","choices":[],"usage":{"total_tokens":1}}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"apim-request-id", b"apim-123"),
                    (b"x-ms-region", b"Sweden Central"),
                    (b"x-ratelimit-remaining-requests", b"99"),
                    (b"server", b"recorder"),
                    (b"set-cookie", b"upstream=secret"),
                    (b"content-length", str(len(reply)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    async def _stream(self, receive: Any, send: Any) -> None:
        self.stream_cancelled = asyncio.Event()
        self.stream_finished = False
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def produce() -> None:
            for index in range(self.chunks):
                await send(
                    {
                        "type": "http.response.body",
                        "more_body": True,
                        "body": b'data: {"choices":[{"delta":{"content":"%d "}}]}\n\n' % index,
                    }
                )
                await asyncio.sleep(self.chunk_delay)
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

        producer = asyncio.ensure_future(produce())
        waiter = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait({producer, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if producer in done:
            self.stream_finished = True
            waiter.cancel()
        else:
            producer.cancel()
            self.stream_cancelled.set()
