"""Request bodies too large to hold in memory: spooled to an anonymous temporary file and mapped back.

body = await read_spooled(request, limit=1 << 30, in_memory=25 << 20)   # bytes, or an mmap past 25 MiB
body[:100], body.find(b"--boundary"), len(body)                        # the same reading API either way

Bodies up to `in_memory` bytes come back as `bytes`, exactly as `Request.body` reads them; larger ones as a
read-only mapping of a temporary file with no name (unlinked at once, so nothing is left behind even after a
crash): consumers slice and search it like bytes, the kernel pages it in as they read, and it stays re-readable
for retries. The mapping is released when the last reference to it goes (the request's `Call`, a worker still
decoding it).

While a body is still arriving, at most `RECEIVE_BUFFER` bytes of it are held in memory: past that it goes,
chunk by chunk, to the temporary file, and a body that ends up within `in_memory` is read back from it once
complete. So a client that sends most of a large body and then stalls costs the process a small buffer and
some page cache, not the body (60 stalled 9 MB uploads: tests/test_connection_limits.py), and the file is
closed when the request ends however it ends (`server.body_idle_timeout_seconds` ends a stalled one).
"""

from __future__ import annotations

import contextlib
import mmap
import tempfile
from typing import IO

from ..errors import InvalidRequest, PayloadTooLarge
from .request import ClientDisconnected, Request

Body = bytes | mmap.mmap
RECEIVE_BUFFER = 1024 * 1024  # small JSON bodies never touch the file; big ones cost one page-cache round trip


async def read_spooled(request: Request, limit: int, in_memory: int) -> Body:
    """The whole body; `PayloadTooLarge` as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Content-Length header is not a number.")
        if int(declared) > limit:
            raise PayloadTooLarge(limit)
    message = await request.receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        # The whole body in one message (most requests): no spool to consider.
        whole: bytes = message.get("body", b"")
        if len(whole) > limit:
            raise PayloadTooLarge(limit)
        if len(whole) <= in_memory:
            return whole
    chunks: list[bytes] = []
    size = 0
    buffer = min(in_memory, RECEIVE_BUFFER)
    spool: IO[bytes] | None = None
    with contextlib.ExitStack() as closing:  # the mapping keeps the file's pages alive after it is closed
        while True:
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                if spool is None and size > buffer:
                    spool = closing.enter_context(tempfile.TemporaryFile())
                    spool.writelines(chunks)
                    chunks = []
                if spool is not None:
                    # A blocking write of one ASGI chunk (64 KiB) to the page cache: cheaper than a thread hop.
                    spool.write(chunk)
                else:
                    chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await request.receive()
        if spool is None:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if size <= in_memory:
            spool.seek(0)
            return spool.read()
        spool.flush()
        return mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ)
