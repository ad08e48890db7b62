"""Sending whole responses: JSON bodies and the gateway's OpenAI-shaped errors.

await send_json(send, 200, orjson.dumps(payload))
await send_error(send, ModelNotFound("gpt-5", available=[...]))
"""

from __future__ import annotations

from ..errors import GatewayError
from .asgi import RawHeaders, Send

JSON = (b"content-type", b"application/json")


async def send_bytes(send: Send, status: int, body: bytes, headers: RawHeaders) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, body: bytes, headers: RawHeaders | None = None) -> None:
    await send_bytes(send, status, body, [JSON, *(headers or ())])


async def send_error(send: Send, error: GatewayError, headers: RawHeaders | None = None) -> None:
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send_json(send, error.status, error.body(), [*extra, *(headers or ())])
