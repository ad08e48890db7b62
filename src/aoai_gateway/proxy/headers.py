"""Which headers cross the gateway, in each direction.

RequestHeaderRules(extra).upstream(scope["headers"])    # an allowlist: no cookie, key, forwarding header
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

_HOP_BY_HOP = (
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
)
# What goes upstream is an allowlist: content negotiation, SDK telemetry, tracing and idempotency. Everything
# else stays here: cookies, forwarding and client-address headers, an API Management subscription key, any
# credential (the provider adds the upstream key in its own header), and hop-by-hop headers.
FORWARDED_HEADERS = (
    "accept",
    "content-type",
    "user-agent",
    "idempotency-key",
    "openai-beta",
    "traceparent",
    "tracestate",
    "x-ms-client-request-id",
    "x-ms-useragent",
)
_FORWARDED_PREFIXES = (b"x-stainless-",)  # the OpenAI SDKs' own telemetry (language, version, retry count)
_DROP_RESPONSE = frozenset(name.encode() for name in (*_HOP_BY_HOP, "content-length", "date", "server", "set-cookie"))


class RequestHeaderRules:
    """Which client headers go upstream: the built-in allowlist plus `upstream.forward_headers`.

    rules = RequestHeaderRules(["x-my-tenant"])
    rules.upstream(scope["headers"])     # [("content-type", "application/json"), ("x-my-tenant", "a")]

    A header that the request's own `Connection` header names is hop-by-hop (RFC 9110 7.6.1) and stays here,
    even when allowed.
    """

    __slots__ = ("_allowed",)

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._allowed = frozenset(name.lower().encode() for name in (*FORWARDED_HEADERS, *extra))

    def upstream(self, raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        allowed = self._allowed
        sent: list[tuple[str, str]] = []
        hop: bytes | None = None
        for name, value in raw:
            lower = name.lower()
            if lower in allowed or lower.startswith(_FORWARDED_PREFIXES):
                sent.append((lower.decode("latin-1"), value.decode("latin-1")))
            elif lower == b"connection":
                hop = value.lower()
        if hop is not None and sent:
            named = {token.strip().decode("latin-1") for token in hop.split(b",")}
            sent = [(name, value) for name, value in sent if name not in named]
        return sent


class ResponseHead(NamedTuple):
    """What the relay needs of an upstream answer's head, read in one pass (`response_head`)."""

    headers: list[tuple[bytes, bytes]]  # those that go back to the client (`response_headers`)
    length: int | None  # Content-Length; None when absent or not a number
    event_stream: bool  # text/event-stream
    request_id: str | None  # apim-request-id or x-request-id (the last one sent)


_REQUEST_IDS = frozenset((b"apim-request-id", b"x-request-id"))


def response_head(raw: Iterable[tuple[bytes, bytes]]) -> ResponseHead:
    """`response_headers(raw)` and what the relay reads from the head, in one pass over it."""
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    event_stream = False
    request_id = None
    for key, value in raw:
        known = _NAMES.get(key)
        name, kind = known if known is not None else _learn(key)
        if kind == _KEEP:
            headers.append((name, value))
        elif kind == _LENGTH:
            length = int(value) if value.isdigit() else None
        elif kind == _CONTENT_TYPE:
            headers.append((name, value))
            event_stream = value.startswith(b"text/event-stream")
        elif kind == _REQUEST_ID:
            headers.append((name, value))
            request_id = value.decode("latin-1")
    return ResponseHead(headers, length, event_stream, request_id)


# Upstream header names as sent, lower-cased, with what the relay does with each: an upstream sends the same
# dozen names in every answer, so after the first answer each is one lookup. Bounded: past it (an upstream
# inventing names), names are classified each time.
_KEEP, _DROP, _LENGTH, _CONTENT_TYPE, _REQUEST_ID = range(5)
_NAMES: dict[bytes, tuple[bytes, int]] = {}
_NAMES_MAX = 1024


def _learn(key: bytes) -> tuple[bytes, int]:
    name = key.lower()
    if name == b"content-length":
        kind = _LENGTH
    elif name in _DROP_RESPONSE or name[:10] == b"x-gateway-":
        kind = _DROP
    elif name == b"content-type":
        kind = _CONTENT_TYPE
    else:
        kind = _REQUEST_ID if name in _REQUEST_IDS else _KEEP
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[key] = (name, kind)
    return name, kind


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers that go back to the client (x-ms-*, apim-request-id, rate limits, ...).

    `x-gateway-*` names are the gateway's own: an upstream cannot set them.
    """
    return [
        (name, value)
        for key, value in raw
        if (name := key.lower()) not in _DROP_RESPONSE and name[:10] != b"x-gateway-"
    ]
