"""Which headers cross the gateway, in each direction, and where the caller's key is found.

upstream_headers = request_headers(scope["headers"])     # hop-by-hop, auth and host removed
client_key({"authorization": "Bearer sk-..."})          # "sk-..."
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
# RFC 9110 7.6.1 hop-by-hop headers plus those the gateway or its HTTP client set themselves. Authorization and
# api-key never go upstream as sent: the provider adds the key in its own header.
_DROP_REQUEST = frozenset(
    name.encode() for name in (*_HOP_BY_HOP, "host", "content-length", "expect", "authorization", "api-key", "cookie")
)
_DROP_RESPONSE = frozenset(name.encode() for name in (*_HOP_BY_HOP, "content-length", "date", "server", "set-cookie"))


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The client's headers that go upstream unchanged."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw if k.lower() not in _DROP_REQUEST]


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers that go back to the client (x-ms-*, apim-request-id, rate limits, ...)."""
    return [(k.lower(), v) for k, v in raw if k.lower() not in _DROP_RESPONSE]


def client_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key from `Authorization: Bearer KEY` (any case) or `api-key: KEY`."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("api-key", "").strip()
    return key or None
