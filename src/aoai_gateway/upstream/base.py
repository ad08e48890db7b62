"""What the gateway needs from an upstream HTTP client, independent of the library behind it.

    response = await client.send(UpstreamRequest("POST", url, headers, body, deployment="prod-4o"), stream=False)
    try:
        body = await response.read()
    finally:
        await response.release()

Implementations map their library's exceptions to `UpstreamUnreachable` / `UpstreamTimeout` at one seam each;
nothing else in the gateway sees a foreign exception.

A request is sent a second time, on another connection, only when not one byte of it was written: a pooled
connection the upstream had already closed. Once any byte may have reached the upstream (a completion is billed
whether or not its answer arrives), a failure is the attempt's, raised for the caller to try another deployment.
Each such resend is reported to the `on_resend` hook the client was built with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..config import Timeouts, UpstreamSettings
from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from ..http.multipart import MultipartForm
from ..http.spool import Body


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    # An mmap only for uploads past `limits.max_audio_bytes`, which only in-process clients accept.
    body: Body = b""
    # The deployment it goes to (a label for what HTTP clients report, `ResendHook`) and the operation: an
    # in-process model routes on these, and reads a multipart body through its already parsed `form`.
    deployment: str = ""
    operation: str = ""
    form: MultipartForm | None = None


ResendHook = Callable[[UpstreamRequest], None]
"""Told of each request sent once more to the same upstream: `on_resend=lambda r: metrics.resend(r.deployment)`."""

WaitingHook = Callable[[int], None]
"""Told how many requests wait for a pooled connection, each time that changes: `on_waiting=gauge.set`."""


BodySink = Callable[[bytes], bool]
"""Takes one piece of a body as it arrives; False: the receiver is full, stop reading until `resume()`."""


@runtime_checkable
class PushingResponse(Protocol):
    """A response that can hand its body to a sink straight from the connection's read callback (no task switch
    per chunk): the stream relay's fast path. The default client's responses are; the others' are not."""

    async def push_to(self, sink: BodySink) -> None:
        """Give every piece of the rest of the body to `sink`; returns when the body ended, raises like
        `iter_chunks` when it broke or went idle."""

    def resume(self) -> None:
        """Read again after `sink` returned False."""


class UpstreamResponse(Protocol):
    status: int
    # Raw header pairs as received, lower- or mixed-case names; the caller filters hop-by-hop ones.
    raw_headers: list[tuple[bytes, bytes]]
    # Seconds of audio an in-process speech model heard (the usage ledger's audio_seconds); 0 over HTTP.
    audio_seconds: float

    async def read(self) -> bytes:
        """The whole body (bounded by the read timeout)."""

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive, each awaited for at most `stream_idle` seconds."""

    async def release(self) -> None:
        """Give the connection back to the pool, or close it when the body was not read to the end."""


@dataclass(slots=True)
class WebSocketRequest:
    """A WebSocket to open upstream (a realtime session): `protocols` are the subprotocols to offer."""

    url: str  # http(s)://...; the client speaks ws(s) to it
    headers: list[tuple[str, str]]
    protocols: tuple[str, ...] = ()
    max_frame_bytes: int = 16 * 1024 * 1024
    deployment: str = ""
    # The key the client presented: an in-process session (`provider: pipeline`) calls the gateway's models with
    # it, as the client would; HTTP clients never send it anywhere.
    caller_key: str | None = None


Frame = str | bytes  # a text or binary WebSocket message


class UpstreamWebSocket(Protocol):
    """An open upstream WebSocket: messages in order, and once it is over, how it closed."""

    protocol: str | None  # the subprotocol the upstream chose
    close_code: int | None  # after `receive` returned None: the code the upstream closed with (1006: no close frame)
    close_reason: str

    async def receive(self) -> Frame | None:
        """The next message; None once the upstream closed (or the connection broke)."""

    async def send(self, frame: Frame) -> None:
        """Send one message; `UpstreamUnreachable` when the connection is gone."""

    async def close(self, code: int, reason: str = "") -> None:
        """Close with `code` (the close handshake is bounded; the connection is dropped after it)."""


class UpstreamClient(Protocol):
    async def send(self, request: UpstreamRequest, *, stream: bool) -> UpstreamResponse:
        """Send the request and return once the response headers arrived."""

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        """Open a WebSocket within `timeout` seconds; `UpstreamSessionRefused` when the upstream answers the
        handshake with an HTTP status, `UpstreamUnreachable` / `UpstreamTimeout` as for `send`."""

    async def aclose(self) -> None:
        """Close every pooled connection."""


@contextmanager
def mapped_errors(exception_map: Mapping[type[BaseException], type[UpstreamError]], what: str) -> Iterator[None]:
    """Re-raise a library's exception as ours: the most specific class in its MRO that the map names wins.

    with mapped_errors(_AIOHTTP_ERRORS, "request"): ...
    """
    try:
        yield
    except tuple(exception_map) as exc:
        target = next((exception_map[c] for c in type(exc).__mro__ if c in exception_map), UpstreamUnreachable)
        verb = "timed out" if issubclass(target, UpstreamTimeout) else "failed"
        raise target(f"The upstream {what} {verb}: {type(exc).__name__}.") from exc


class UpstreamClientFactory(Protocol):
    def __call__(
        self, settings: UpstreamSettings, on_resend: ResendHook | None = None, on_waiting: WaitingHook | None = None
    ) -> UpstreamClient: ...


__all__ = [
    "BodySink",
    "Frame",
    "PushingResponse",
    "ResendHook",
    "Timeouts",
    "UpstreamClient",
    "UpstreamClientFactory",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamWebSocket",
    "WaitingHook",
    "WebSocketRequest",
    "mapped_errors",
]
