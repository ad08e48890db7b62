"""Request bodies too large to hold in memory: spooled to an anonymous temporary file and mapped back.

body = await read_spooled(request, limit=1 << 30, in_memory=25 << 20)   # bytes, or an mmap past 25 MiB
body[:100], body.find(b"--boundary"), len(body)                        # the same reading API either way

Bodies up to `in_memory` bytes stay `bytes`, exactly as `Request.body` reads them. Past it the body goes,
chunk by chunk as it arrives, to a temporary file with no name (unlinked at once, so nothing is left behind
even after a crash), which is then mapped read-only: consumers slice and search it like bytes, the kernel
pages it in as they read, and it stays re-readable for retries. The mapping is released when the last
reference to it goes (the request's `Call`, a worker still decoding it).
"""

from __future__ import annotations

import contextlib
import mmap
import tempfile
from typing import IO

from ..errors import InvalidRequest, PayloadTooLarge
from .request import ClientDisconnected, Request

Body = bytes | mmap.mmap


async def read_spooled(request: Request, limit: int, in_memory: int) -> Body:
    """The whole body; `PayloadTooLarge` as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Content-Length header is not a number.")
        if int(declared) > limit:
            raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    spool: IO[bytes] | None = None
    with contextlib.ExitStack() as closing:  # the mapping keeps the file's pages alive after it is closed
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                if spool is None and size > in_memory:
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
        if spool is None:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        spool.flush()
        return mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ)
