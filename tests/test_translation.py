"""What the gateway sends upstream and what comes back: URLs, api-version, auth, headers, bodies."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from .conftest import EMULATOR_KEY, GatewayFactory
from .recorder import Recorder
from .servers import AsgiServer


def post(gateway: AsgiServer, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}", content=body, headers={"content-type": "application/json", **headers}, timeout=10
    )


def test_url_prefix_single_api_version_and_auth(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    body = b'{"model": "gpt-4o",  "messages": [], "future_param": {"x": 1.50}, "n": 1}'
    response = post(
        gateway,
        "/v1/chat/completions?api-version=2023-01-01",
        body,
        authorization="bEaReR client-key",
        connection="keep-alive",
        cookie="c=1",
        **{"x-custom": "kept"},
    )
    assert response.status_code == 200
    seen = rec.requests[-1]
    assert seen.path == "/apim/team/openai/deployments/chat-4o/chat/completions"
    assert seen.query == "api-version=2024-10-21"  # exactly one: the configured version
    assert seen.headers["api-key"] == "client-key"
    assert "authorization" not in seen.headers and "cookie" not in seen.headers
    assert seen.headers["x-custom"] == "kept"
    assert seen.body == body  # byte-for-byte, unknown fields and formatting intact


def test_azure_native_route_keeps_client_api_version(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    body = b'{"input": "x"}'
    response = post(
        gateway,
        "/openai/deployments/text-embedding-3-small/embeddings?api-version=2025-01-01-preview",
        body,
        **{"api-key": "k1"},
    )
    assert response.status_code == 200
    seen = rec.requests[-1]
    assert (seen.path, seen.query) == ("/openai/deployments/embed-small/embeddings", "api-version=2025-01-01-preview")
    assert seen.headers["api-key"] == "k1" and seen.body == body


def test_v1_style_and_openai_provider_rewrite_model(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    post(gateway, "/v1/chat/completions", b'{"model":"gpt-4o-v1","messages":[]}', **{"api-key": "k"})
    seen = rec.requests[-1]
    assert (seen.path, seen.query) == ("/openai/v1/chat/completions", "")
    assert seen.body == b'{"model":"chat-v1","messages":[]}'
    post(gateway, "/v1/chat/completions", b'{"model":"oss-llama","messages":[]}', **{"api-key": "k"})
    seen = rec.requests[-1]
    assert seen.path == "/openai/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer k" and "api-key" not in seen.headers
    assert seen.body == b'{"model":"llama-upstream","messages":[]}'


def test_server_key_replaces_client_key(recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    post(gateway, "/v1/chat/completions", b'{"model":"gpt-4o-keyed"}', authorization="Bearer client")
    assert rec.requests[-1].headers["api-key"] != "client"
    assert rec.requests[-1].headers["api-key"].startswith("emulator-key")


def test_response_headers_relayed(recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory) -> None:
    _, upstream = recorder
    gateway = start_gateway(upstream.url)
    response = post(gateway, "/v1/chat/completions", b'{"model":"gpt-4o"}', **{"api-key": "k"})
    assert response.headers["apim-request-id"] == "apim-123"
    assert response.headers["x-ms-region"] == "Sweden Central"
    assert response.headers["x-ratelimit-remaining-requests"] == "99"
    assert "set-cookie" not in response.headers and response.headers.get("server") != "recorder"
    assert response.headers["x-gateway-request-id"]


def test_multipart_forwarded_byte_for_byte(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    files = {"file": ("r\u00e9union.m4a", b"\x00\x01binary audio\r\n--not-a-boundary", "audio/mp4")}
    data: dict[str, Any] = {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "timestamp_granularities[]": ["word", "segment"],
    }
    request = httpx.Request(
        "POST", f"{gateway.url}/v1/audio/transcriptions", files=files, data=data, headers={"api-key": "k"}
    )
    body = request.read()
    with httpx.Client(timeout=10) as http:
        response = http.send(request)
    assert response.status_code == 200
    seen = rec.requests[-1]
    assert seen.path == "/openai/deployments/whisper/audio/transcriptions"
    assert seen.body == body
    assert seen.headers["content-type"] == request.headers["content-type"]
    assert seen.body.count(b'name="timestamp_granularities[]"') == 2


def test_stream_relayed_as_it_arrives(recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory) -> None:
    rec, upstream = recorder
    rec.chunks, rec.chunk_delay = 10, 0.1
    gateway = start_gateway(upstream.url)
    arrivals = []
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        content=b'{"model":"gpt-4o","stream":true}',
        headers={"content-type": "application/json", "api-key": "k"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - started)
    # Ten chunks 100 ms apart: the first must arrive long before the last was produced (no buffering).
    assert len(arrivals) >= 5
    assert arrivals[0] < 0.5 < arrivals[-1]


async def test_client_disconnect_cancels_upstream(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    rec.chunks, rec.chunk_delay = 200, 0.05
    gateway = start_gateway(upstream.url)
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            content=b'{"model":"gpt-4o","stream":true}',
            headers={"content-type": "application/json", "api-key": "k"},
        ) as response,
    ):
        async for _ in response.aiter_raw():
            break
    deadline = time.monotonic() + 60  # a bound for a stuck test, not a speed requirement
    while rec.stream_cancelled is None or not rec.stream_cancelled.is_set():
        assert time.monotonic() < deadline, "upstream stream was not cancelled"
        await __import__("asyncio").sleep(0.02)
    assert not rec.stream_finished


def test_legacy_engines_route_takes_model_from_path(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    response = post(gateway, "/v1/engines/text-embedding-3-small/embeddings", b'{"input": ["a"]}', **{"api-key": "k"})
    assert response.status_code == 200
    assert rec.requests[-1].path == "/openai/deployments/embed-small/embeddings"
    assert rec.requests[-1].body == b'{"input": ["a"]}'


def test_azure_stream_extras_pass_intact(gateway: AsgiServer) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        headers={"api-key": EMULATOR_KEY},
        json={
            "model": "gpt-4o",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hello there"}],
        },
    ) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    assert any("content_filter_results" in c["choices"][0] for c in chunks if c["choices"])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
