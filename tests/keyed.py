"""Helpers for `auth: keys` tests; the `keyed` fixture itself lives in conftest.py.

start, keys, db, log = keyed          # start(upstream_url=None, **settings) -> a keys-mode gateway
secret = await keys.make(rpm=3, models=("gpt-4o",))
"""

from __future__ import annotations

from typing import Any

import httpx

from aoai_gateway.store import KeySpec, KeyStore, Limits

from .servers import AsgiServer

MASTER = "master-key-keys-tests-01"


class Keys:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def make(self, **limits: Any) -> str:
        models = limits.pop("models", None)
        expires = limits.pop("expires_at", None)
        _, secret = await self.store.create(KeySpec("t", models, Limits(**limits), expires))
        return secret


def chat(gateway: AsgiServer, secret: str | None, **extra: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], **extra}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)


def fresh_minute(margin: float = 5.0) -> None:
    """Wait out the end of the current minute when it is near: rpm/tpm count in fixed one-minute windows, so a
    burst that straddles a boundary would find a fresh budget halfway through."""
    import time

    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)
