"""An answer made in-process by a local model (speech, chat): a whole body, or the events of a running job.

    LocalResponse(200, [(b"content-type", b"application/json"), content_length(body)], body=body)
    LocalResponse(200, [(b"content-type", b"text/event-stream")], events=queue, job=job)

It is an `UpstreamResponse` like an HTTP client's, so the proxy relays it the same way; `release()` cancels the
job (a no-op once it finished), which is how a client that went away mid-stream stops a local model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol


class Job(Protocol):
    def cancel(self) -> None:
        """Stop the work at its next step; nothing once it finished."""


class LocalResponse:
    __slots__ = ("_body", "_events", "_job", "audio_seconds", "raw_headers", "status")

    def __init__(
        self,
        status: int,
        raw_headers: list[tuple[bytes, bytes]],
        *,
        body: bytes = b"",
        events: asyncio.Queue[bytes | BaseException | None] | None = None,
        job: Job | None = None,
        audio_seconds: float = 0.0,
    ) -> None:
        self.status = status
        self.audio_seconds = audio_seconds  # what a speech model heard (the ledger's audio seconds)
        self.raw_headers = raw_headers
        self._body = body
        self._events = events
        self._job = job

    async def read(self) -> bytes:
        return self._body if self._events is None else b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._events is None:
            if self._body:
                yield self._body
            return
        while (item := await self._events.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def release(self) -> None:
        if self._job is not None:
            self._job.cancel()  # a no-op once the job finished; stops it when the client went away mid-stream


def content_length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


def mark_retrieved(future: asyncio.Future[Any]) -> None:
    """A done callback: a failed stream already told its client through an error event; this marks the
    exception as seen (asyncio would log it as never retrieved)."""
    if not future.cancelled():
        future.exception()


__all__ = ["Job", "LocalResponse", "content_length", "mark_retrieved"]
