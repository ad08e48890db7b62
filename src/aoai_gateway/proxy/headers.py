"""Which headers cross the gateway, in each direction.

RequestHeaderRules(extra).upstream(scope["headers"])    # an allowlist: no cookie, key, forwarding header
"""

from __future__ import annotations

from collections.abc import Iterable

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


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers that go back to the client (x-ms-*, apim-request-id, rate limits, ...).

    `x-gateway-*` names are the gateway's own: an upstream cannot set them.
    """
    return [
        (name, value)
        for key, value in raw
        if (name := key.lower()) not in _DROP_RESPONSE and name[:10] != b"x-gateway-"
    ]
