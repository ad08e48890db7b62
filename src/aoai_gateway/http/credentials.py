"""Where a caller's key is found in a request's headers.

client_key({"authorization": "Bearer sk-..."})          # "sk-..."
client_key({"api-key": "abc"})                          # "abc" (Azure's header)
"""

from __future__ import annotations

from collections.abc import Mapping


def client_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key from `Authorization: Bearer KEY` (any case) or `api-key: KEY`."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("api-key", "").strip()
    return key or None
