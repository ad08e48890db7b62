"""Token usage read from upstream answers, for metrics and the per-deployment tokens-per-minute window.

usage_of_body(b'{"usage": {"prompt_tokens": 5, "completion_tokens": 2}}')   # (5, 2)
tail = StreamTail(); tail.feed(chunk) ...; tail.usage()                     # from the SSE usage chunk
usage_of_body(b'{"usage": {"input_tokens": 5, "output_tokens": 2}}')       # (5, 2): the Responses API's names

A Responses stream carries its usage in the last event, `response.completed`, inside the whole response
object; that event can be longer than the tail kept, so its counts are then read from the tail's text.
"""

from __future__ import annotations

import re

import orjson

Usage = tuple[int, int]
_MARK = b'"usage"'


_PROMPT = re.compile(rb'"(?:prompt|input)_tokens"\s*:\s*(\d+)')
_COMPLETION = re.compile(rb'"(?:completion|output)_tokens"\s*:\s*(\d+)')


def usage_of_body(body: bytes) -> Usage | None:
    """Read only the `usage` object's two counts: parsing a whole answer per request costs more than relaying it."""
    start = body.rfind(_MARK)
    if start < 0:
        return None
    prompt = _PROMPT.search(body, start)
    if prompt is None:
        return None
    completion = _COMPLETION.search(body, start)
    return int(prompt[1]), int(completion[1]) if completion else 0


def _usage_of(document: object) -> Usage | None:
    if not isinstance(document, dict):
        return None
    usage = document.get("usage")
    if usage is None and isinstance(document.get("response"), dict):
        usage = document["response"].get("usage")  # Responses: `response.completed` wraps the response
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


class StreamTail:
    """Keeps the last 2 KiB or so of an SSE stream: the usage chunk, when asked for, is the one before [DONE].

    It holds the last chunks themselves (no copy per chunk) and joins them only when asked: per open stream that
    is a list and a few short-lived chunks, not a buffer of its own.
    """

    __slots__ = ("_chunks", "_size")
    _KEEP = 2048  # a chat usage event is ~400 bytes; a longer event is read by its tail (`usage_of_body`)

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        chunks = self._chunks
        chunks.append(chunk)
        self._size += len(chunk)
        while self._size - len(chunks[0]) >= self._KEEP:
            self._size -= len(chunks.pop(0))

    def usage(self) -> Usage | None:
        tail = b"".join(self._chunks)[-self._KEEP :]
        if _MARK not in tail:
            return None
        for line in reversed(tail.split(b"\n")):
            if line.startswith(b"data:") and _MARK in line:
                try:
                    return _usage_of(orjson.loads(line[5:]))
                except orjson.JSONDecodeError:
                    return None
            if _MARK in line:
                return usage_of_body(line)  # an event longer than the tail: its start was cut off
        return None


class UsageChunkFilter:
    """Drops the usage-only SSE event the gateway asked for on the client's behalf; passes everything else.

    kept = filter.feed(chunk)    # whole events only; a partial one waits for the rest
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._buffer + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._buffer = data
            return b""
        complete, self._buffer = data[: end + 2], data[end + 2 :]
        if b'"usage"' not in complete:
            return complete
        kept = [event for event in complete.split(b"\n\n") if event and not _is_usage_only(event)]
        return b"".join(event + b"\n\n" for event in kept)

    def rest(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


def _is_usage_only(event: bytes) -> bool:
    if b'"usage"' not in event or not event.startswith(b"data:"):
        return False
    try:
        document = orjson.loads(event[5:])
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("choices") == [] and bool(document.get("usage"))
