"""One model instance, one answer at a time: beyond the queue a 429 with Retry-After (embeddings included); a client
that leaves stops its generation (the worker is free again long before the answer would have ended)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from aoai_gateway.app import create_app

from ..servers import AsgiServer
from .conftest import llm_settings

HELLO = [{"role": "user", "content": "Tell me everything."}]
# Bounds on hangs, not expectations.
POLL_SECONDS = 60.0
LONG = 130_000  # tokens the long answer asks for: a minute or more of generating, were it not stopped


async def test_a_full_queue_is_a_429_and_a_client_that_leaves_frees_the_model(tiny_model: Path) -> None:
    settings = llm_settings(tiny_model, {"queue_size": 0, "context_tokens": LONG + 1000})
    with AsgiServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=f"{server.url}/v1", timeout=POLL_SECONDS) as http:
            # How fast this machine generates now: the yardstick for "stopped long before the end".
            started = time.perf_counter()
            measured = await http.post(
                "/chat/completions", json={"model": "tiny-local", "messages": HELLO, "max_tokens": 300}
            )
            per_token = (time.perf_counter() - started) / 300
            assert measured.json()["usage"]["completion_tokens"] == 300

            body = {"model": "tiny-local", "messages": HELLO, "max_tokens": LONG, "stream": True}
            async with http.stream("POST", "/chat/completions", json=body) as long:
                assert long.status_code == 200
                chunks = long.aiter_bytes()
                await anext(chunks)  # generating now

                # Embeddings share the model's worker and queue: refused while it generates (asked first, so the
                # 429 is the model's own, not the router's cool-down that follows one).
                embedding = await http.post("/embeddings", json={"model": "tiny-local", "input": "busy"})
                assert embedding.status_code == 429, embedding.text
                assert embedding.json()["error"]["code"] == "rate_limit_exceeded"
                refused = await http.post(
                    "/chat/completions", json={"model": "tiny-local", "messages": HELLO, "max_tokens": 2}
                )
                assert refused.status_code == 429, refused.text
                assert int(refused.headers["retry-after"]) >= 1
                assert refused.json()["error"]["code"] == "rate_limit_exceeded"
                left = time.perf_counter()
            # The stream is closed here, with almost all of the answer to come: the generation must stop at its
            # next token. Until the model's Retry-After passes, the router itself answers 429 (cool-down).

            deadline = left + POLL_SECONDS
            while True:
                answer = await http.post(
                    "/chat/completions", json={"model": "tiny-local", "messages": HELLO, "max_tokens": 2}
                )
                if answer.status_code == 200 or time.perf_counter() > deadline:
                    break
                assert answer.status_code == 429, answer.text
                await asyncio.sleep(0.05)
            freed = time.perf_counter() - left
    assert answer.status_code == 200, answer.text
    # Had it gone on, the long answer would have needed LONG x per_token at least (attention grows with it).
    assert freed < LONG * per_token / 3, (freed, per_token)
