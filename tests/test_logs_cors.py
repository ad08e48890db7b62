"""Logs carry one structured line per request and never a key or a prompt; CORS when enabled."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from aoai_gateway.logs import AccessLog, JsonFormatter

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import START_SECONDS, AsgiServer

SECRET_PROMPT = "my-very-private-prompt-7f3a"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("aoai_gateway")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_one_structured_line_per_request_without_secrets(
    log_output: io.StringIO, start_gateway: GatewayFactory
) -> None:
    access = io.BytesIO()
    gateway = start_gateway(access_log=AccessLog(access, interval=0.01))
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    headers = {"authorization": f"Bearer {EMULATOR_KEY}"}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code == 200
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json={**body, "stream": True}, headers=headers, timeout=10
    ) as response:
        response.read()
    # Error paths too: an upstream rejection, an unreachable upstream, a bad body echoing the prompt.
    httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers={"api-key": "wrong-" + EMULATOR_KEY})
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=b"{" + SECRET_PROMPT.encode(),
        headers={"content-type": "application/json", **headers},
    )
    down = start_gateway("http://127.0.0.1:9", access_log=AccessLog(access, interval=0.01))
    httpx.post(f"{down.url}/v1/chat/completions", json=body, headers=headers, timeout=10)

    # The access line is written just after the last byte went out, then flushed: give the server a moment.
    deadline = time.monotonic() + START_SECONDS  # it is there at once when the machine is idle
    while access.getvalue().count(b"\n") < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    text = log_output.getvalue() + access.getvalue().decode()
    assert EMULATOR_KEY not in text and SECRET_PROMPT not in text
    lines = [json.loads(line) for line in access.getvalue().splitlines()]
    assert len(lines) == 5 and all(line["logger"] == "aoai_gateway.access" for line in lines)
    first = lines[0]
    assert first["route"] == "/v1/chat/completions" and first["model"] == "gpt-4o"
    assert first["deployment"] == "chat-4o" and first["status"] == 200
    for field in ("ts", "request_id", "duration_ms", "upstream_ms", "bytes_in", "bytes_out"):
        assert field in first
    assert [line["status"] for line in lines] == [200, 200, 401, 400, 502]


def test_log_bodies_is_an_explicit_debug_switch(log_output: io.StringIO, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(logging={"log_bodies": True})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers={"api-key": EMULATOR_KEY})
    assert response.status_code == 200
    text = log_output.getvalue()
    assert SECRET_PROMPT in text and EMULATOR_KEY not in text


def test_cors_off_by_default(gateway: AsgiServer) -> None:
    response = httpx.get(f"{gateway.url}/v1/models", headers={"origin": "https://app.example"}, timeout=10)
    assert "access-control-allow-origin" not in response.headers


def test_cors_preflight_and_actual_response(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(cors={"enabled": True, "allow_origins": ["https://app.example"]})
    preflight = httpx.options(
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    actual = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"origin": "https://app.example", "api-key": EMULATOR_KEY},
    )
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in actual.headers["access-control-expose-headers"]
    # An error response carries the headers too, so browsers can read the error.
    error = httpx.get(f"{gateway.url}/v1/nope", headers={"origin": "https://app.example"}, timeout=10)
    assert error.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.get(f"{gateway.url}/v1/models", headers={"origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in other.headers
