"""Raw ASGI sending: whole bodies, paced chunk sequences, injected resets, and disconnect-aware waits.

    await send_whole(send, 200, headers, b"{}")
    await send_reply(send, reply, headers, interval_s=0.02, reset_after=None)
    gone = await sleep_unless_disconnected(receive, 30.0)

The emulator bypasses Starlette's response classes on its hot path: one `http.response.start` and the
body messages are all it needs, and raising mid-body must reach the server untouched (see `send_reply`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from starlette.types import Receive, Send

from .call import Reply
from .errors import InjectedReset

__all__ = ["Header", "send_reply", "send_whole", "sleep_unless_disconnected"]

Header = tuple[bytes, bytes]


async def send_whole(send: Send, status: int, headers: Sequence[Header], body: bytes) -> None:
    """One response with a content-length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_reply(
    send: Send, reply: Reply, headers: Sequence[Header], *, interval_s: float, reset_after: int | None
) -> None:
    """Send a reply; with `reset_after` set, stop part-way and raise InjectedReset.

    The server answers an exception raised after the headers went out by closing the connection with
    the chunked body unterminated, which clients report as an incomplete read, the way they see a
    connection reset by an intermediary. A whole (non-streamed) reply is cut at half its body.
    """
    headers = [*headers, (b"content-type", reply.media_type)]
    if not reply.streamed and reset_after is None:
        await send_whole(send, 200, headers, b"".join(reply.chunks))
        return
    if reply.streamed:
        headers += [(b"cache-control", b"no-cache, must-revalidate"), (b"x-accel-buffering", b"no")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if not reply.streamed:
        body = b"".join(reply.chunks)
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise InjectedReset()
    if not interval_s:
        # Unpaced: one write instead of one per event, which is what load tests need from the emulator.
        await send({"type": "http.response.body", "body": b"".join(reply.chunks[:reset_after]), "more_body": True})
        if reset_after is not None:
            raise InjectedReset()
        await send({"type": "http.response.body", "body": b""})
        return
    for index, chunk in enumerate(reply.chunks):
        if index == reset_after:
            raise InjectedReset()
        if index and interval_s:
            await asyncio.sleep(interval_s)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    if reset_after is not None:
        raise InjectedReset()  # every chunk went out, but the body never ends
    await send({"type": "http.response.body", "body": b""})


async def sleep_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`, or less if the client disconnects first; True when it did.

    Call only once the request body has been read: from then on `receive` yields nothing but the
    disconnect.
    """

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait_for(asyncio.shield(watcher), timeout=seconds)
    except TimeoutError:
        return False
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return True
