"""Token usage read from upstream answers, for metrics and the per-deployment tokens-per-minute window.

usage_of_body(b'{"usage": {"prompt_tokens": 5, "completion_tokens": 2}}')   # (5, 2)
tail = StreamTail(); tail.feed(chunk) ...; tail.usage()                     # from the SSE usage chunk
"""

from __future__ import annotations

import orjson

Usage = tuple[int, int]
_MARK = b'"usage"'


def usage_of_body(body: bytes) -> Usage | None:
    if _MARK not in body:
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _usage_of(document)


def _usage_of(document: object) -> Usage | None:
    usage = document.get("usage") if isinstance(document, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


class StreamTail:
    """Keeps the last few KiB of an SSE stream: the usage chunk, when asked for, is the one before [DONE]."""

    __slots__ = ("_tail",)
    _KEEP = 8192

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        self._tail = (self._tail + chunk)[-self._KEEP :]

    def usage(self) -> Usage | None:
        if _MARK not in self._tail:
            return None
        for line in reversed(self._tail.split(b"\n")):
            if line.startswith(b"data:") and _MARK in line:
                try:
                    return _usage_of(orjson.loads(line[5:]))
                except orjson.JSONDecodeError:
                    return None
        return None
