"""One request's response writer under the gateway's server protocol: uvicorn's, with two costs taken out.

    cycle = ResponseCycle(scope=..., transport=..., ...)    # made by `GuardedHttpProtocol.on_headers_complete`

uvicorn's `RequestResponseCycle.send` (0.55) checks every response header with two regular expressions and
writes the head as soon as it is sent, the body in a second write. Here:
- a header name is checked once, then known (a bounded table of the names seen, lower-cased, with what the
  writer does with each); the values are checked in one pass over them joined, with `bytes.translate` deleting
  every allowed byte (what is left is forbidden). The same character classes as uvicorn's two regular
  expressions (a test holds them equal): a relayed Azure answer carries a dozen headers, and 24 searches became
  one table pass;
- the head is held until the first body message and goes out in the same write (one system call instead of
  two for a whole answer). An app that awaits something between the two (a stream waiting for its first
  chunk) still gets its head out then: the gateway's own handlers send the head with the first piece of body.

`push()` writes a piece of a streamed body synchronously, for a relay that hands chunks over from the
upstream connection's read callback (`ServerHooks.push`).

Everything else (flow control, chunked encoding when no length is given, HEAD, keep-alive, Content-Length
checks, the response-complete callback) is uvicorn's behaviour, unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle


def _allowed(forbidden: re.Pattern[bytes]) -> bytes:
    """The bytes `forbidden` does not match: `data.translate(None, allowed)` is empty when `data` is clean."""
    return bytes(byte for byte in range(256) if forbidden.match(bytes((byte,))) is None)


NAME_BYTES = _allowed(HEADER_RE)
VALUE_BYTES = _allowed(HEADER_VALUE_RE)

# Header names as sent, checked once: their lower-case form and whether the writer acts on them. An app sends the
# same few dozen names again and again; the cache is bounded all the same (past it, names are checked each time).
_OTHER, _LENGTH, _ENCODING, _CONNECTION = 0, 1, 2, 3
_KINDS = {b"content-length": _LENGTH, b"transfer-encoding": _ENCODING, b"connection": _CONNECTION}
_NAMES: dict[bytes, tuple[bytes, int]] = {}
_NAMES_MAX = 1024


def _learn(name: bytes) -> tuple[bytes, int]:
    if name.translate(None, NAME_BYTES):
        raise RuntimeError("Invalid HTTP header name.")
    lowered = name.lower()
    known = (lowered, _KINDS.get(lowered, _OTHER))
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[name] = known
    return known


class ResponseCycle(RequestResponseCycle):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: bytes | None = None  # written with the first body message

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            self._start(message)
        elif not self.response_complete:
            if kind != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{kind}'.")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")

    def push(self, body: bytes) -> bool:
        """A piece of a streamed body written at once, from a callback (no task, no await); False when the
        client's buffer is full: the caller stops until the protocol's `resume_writing`."""
        if self.disconnected or self.response_complete:
            return True  # the request's task is being cancelled (or is done): drop it
        self._body(body, True)
        return not self.flow.write_paused

    def _start(self, message: Any) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        content = [STATUS_LINE[status]]
        values = []
        closing = False
        for headers in (self.default_headers, message.get("headers", ())):
            for name, value in headers:
                known = _NAMES.get(name)
                lowered, kind = known if known is not None else _learn(name)
                if kind:
                    if kind == _LENGTH:
                        if self.chunked_encoding is None:
                            self.expected_content_length = int(value.decode())
                            self.chunked_encoding = False
                    elif kind == _ENCODING:
                        if value.lower() == b"chunked":
                            self.expected_content_length = 0
                            self.chunked_encoding = True
                    elif b"close" in [token.lower().strip() for token in value.split(b",")]:
                        self.keep_alive = False
                        closing = True
                values.append(value)
                content += (lowered, b": ", value, b"\r\n")
        if b"".join(values).translate(None, VALUE_BYTES):
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not closing:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self._head = b"".join(content)

    def _body(self, body: bytes, more_body: bool) -> None:
        head, self._head = self._head, None
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = b""
        elif self.chunked_encoding:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        if head is not None:
            data = head + data
        if data:
            self.transport.write(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


__all__ = ["ResponseCycle"]
