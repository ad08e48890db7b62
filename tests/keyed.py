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
