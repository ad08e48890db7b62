"""One typed record per request: what was asked and what happened, filled in as the request goes through.

    exchange = Exchange(request_id, "POST", "/v1/chat/completions", time.perf_counter())
    exchange.model = "gpt-4o"; exchange.deployment = "chat-4o"; exchange.usage = (12, 40)
    for listener in listeners: listener.finished(exchange)     # access log, metrics, usage ledger

The app creates it where the request enters and hands it to the handler with the request; the access control,
the proxy service and the relay write to it; once the response is over, the listeners read it. Nothing here does
I/O: it is only the record, so every layer can import it without a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from .store.keys import GatewayKey

Usage = tuple[int, int]  # (prompt tokens, completion tokens)


@dataclass(slots=True)
class Exchange:
    request_id: str
    method: str
    path: str
    started: float  # time.perf_counter() when the request arrived
    route: str = "-"  # the route template, e.g. /v1/chat/completions
    # What was asked
    model: str | None = None
    key: GatewayKey | None = None  # the caller's gateway key once it is accepted (auth: keys)
    key_id: str | None = None  # the key's id once it is known, also for refused calls of a known key
    event_id: str | None = None
    zone: ZoneInfo | None = None  # the time zone of the key's event: its daily caps count days there
    bytes_in: int = 0
    # What happened
    status: int = 0
    bytes_out: int = 0
    deployment: str | None = None  # the deployment that answered (or was tried last)
    attempts: int = 0
    upstream_ms: float | None = None
    upstream_request_id: str | None = None
    usage: Usage | None = None
    audio_seconds: float = 0.0
    stream_error: str | None = None
    strip_usage: bool = False  # the gateway asked a stream for its usage chunk: hide it from the client
    finished: bool = False  # the whole response went out
    client_disconnected: bool = False
    authenticated: bool = False  # a credential was checked and accepted (unauthenticated calls are not ledgered)
    duration: float = 0.0  # seconds from arrival to the response's end, set once before the listeners hear of it

    def seconds(self) -> float:
        """Seconds since the request arrived (while it is in flight; listeners read `duration`)."""
        return time.perf_counter() - self.started


class ExchangeListener(Protocol):
    """Told once per request, after its response ended: access log, metrics, usage ledger."""

    def finished(self, exchange: Exchange) -> None: ...


class ExchangeTracer(Protocol):
    """Told when a request arrives, before it is routed, with its raw headers: tracing opens its span here."""

    def started(self, exchange: Exchange, headers: Iterable[tuple[bytes, bytes]]) -> None: ...


__all__ = ["Exchange", "ExchangeListener", "ExchangeTracer", "Usage"]
