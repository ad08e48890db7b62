"""Every error the gateway produces is OpenAI-shaped with the right status; bad input never gets a 500."""

from __future__ import annotations

import random
import socket

import httpx
import pytest

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import AsgiServer, free_port

AUTH = {"api-key": EMULATOR_KEY}


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


def post(url: str, body: bytes, content_type: str = "application/json", **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": content_type, **AUTH, **headers}, timeout=10)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", None, None),
        (b"", None, None),
        (b"[1, 2]", None, None),
        (b'{"messages": []}', "missing_required_parameter", "model"),
        (b'{"model": 4}', "invalid_type", "model"),
        (b'{"model": ""}', "missing_required_parameter", "model"),
        (b"\xff\xfe", None, None),
    ],
)
def test_bad_json_is_400(gateway: AsgiServer, body: bytes, code: str | None, param: str | None) -> None:
    error = assert_openai_error(post(f"{gateway.url}/v1/chat/completions", body), 400, code)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_missing_multipart_model_is_400(gateway: AsgiServer) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions", files={"file": ("a.wav", b"x")}, headers=AUTH, timeout=10
    )
    assert assert_openai_error(response, 400, "missing_required_parameter")["param"] == "model"


def test_truncated_multipart_is_400(gateway: AsgiServer) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b\r\nContent-Dispo'
    response = post(f"{gateway.url}/v1/audio/transcriptions", body, "multipart/form-data; boundary=b")
    assert "truncated" in str(assert_openai_error(response, 400)["message"])


def test_no_credentials_is_401(gateway: AsgiServer) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o"}, timeout=10)
    assert_openai_error(response, 401, "invalid_api_key")


def test_unknown_model_is_404_listing_models(gateway: AsgiServer) -> None:
    response = post(f"{gateway.url}/v1/chat/completions", b'{"model": "gpt-5", "messages": []}')
    error = assert_openai_error(response, 404, "model_not_found")
    assert "gpt-4o" in str(error["message"]) and "whisper-1" in str(error["message"])


def test_unknown_route_and_method(gateway: AsgiServer) -> None:
    assert_openai_error(httpx.get(f"{gateway.url}/v1/nope", timeout=10), 404, "unknown_url")
    assert_openai_error(httpx.get(f"{gateway.url}/", timeout=10), 404, "unknown_url")
    response = httpx.get(f"{gateway.url}/v1/chat/completions", timeout=10)
    assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_body_over_limit_is_413(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(limits={"max_json_bytes": 2048, "max_audio_bytes": 4096})
    big = b'{"model": "gpt-4o", "x": "' + b"a" * 4000 + b'"}'
    assert_openai_error(post(f"{gateway.url}/v1/chat/completions", big), 413, "request_too_large")

    def chunked() -> bytes:
        yield big  # type: ignore[misc]

    # Without Content-Length the limit is enforced while reading.
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=chunked(),  # type: ignore[arg-type]
        headers={"content-type": "application/json", **AUTH},
        timeout=10,
    )
    assert_openai_error(response, 413)
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("a.wav", b"x" * 5000)},
        headers=AUTH,
        timeout=10,
    )
    assert_openai_error(response, 413)


def test_wrong_content_type_is_415(gateway: AsgiServer) -> None:
    assert_openai_error(
        post(f"{gateway.url}/v1/chat/completions", b"model=gpt-4o", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    assert_openai_error(post(f"{gateway.url}/v1/audio/transcriptions", b'{"model": "whisper-1"}'), 415)


def test_azure_route_needs_api_version(gateway: AsgiServer) -> None:
    response = post(f"{gateway.url}/openai/deployments/chat-4o/chat/completions", b'{"messages": []}')
    assert assert_openai_error(response, 400)["param"] == "api-version"


def test_upstream_unreachable_is_502(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(f"http://127.0.0.1:{free_port()}")
    response = post(f"{gateway.url}/v1/chat/completions", b'{"model": "gpt-4o"}')
    assert_openai_error(response, 502, "upstream_unreachable")


def test_upstream_timeout_is_504(start_gateway: GatewayFactory) -> None:
    # A listener that accepts and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        gateway = start_gateway(
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            upstream={"timeouts": {"connect": 1, "read": 0.5, "stream_idle": 0.5}},
        )
        response = post(f"{gateway.url}/v1/chat/completions", b'{"model": "gpt-4o"}')
        assert_openai_error(response, 504, "upstream_timeout")
        response = post(f"{gateway.url}/v1/chat/completions", b'{"model": "gpt-4o", "stream": true}')
        assert_openai_error(response, 504, "upstream_timeout")


def test_upstream_errors_pass_through(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway()
    chat = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
    response = post(f"{gateway.url}/v1/chat/completions", chat, **{"x-emulator-fault": "429;retry_after_ms=1500"})
    assert response.status_code == 429
    assert response.headers["retry-after-ms"] == "1500"
    assert "error" in response.json()
    # The throttled deployment rests as long as Azure asked: the gateway answers for it meanwhile.
    again = post(f"{gateway.url}/v1/chat/completions", chat)
    error = assert_openai_error(again, 429, "rate_limit_exceeded")
    assert 1 <= int(again.headers["retry-after"]) <= 2 and "gpt-4o" in str(error["message"])
    filtered = post(
        f"{gateway.url}/v1/chat/completions",
        b'{"model": "gpt-4o-v1", "messages": [{"role": "user", "content": "[[content_filter]]"}]}',
    )
    assert filtered.status_code == 400 and filtered.json()["error"]["code"] == "content_filter"


def test_idle_stream_ends_with_error_event(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(upstream={"timeouts": {"stream_idle": 0.05}})
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        headers=AUTH,
        json={
            "model": "gpt-4o-slow",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six"}],
        },
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    assert '"code":"upstream_timeout"' in text and "[DONE]" not in text


def test_reset_mid_stream_ends_with_error_event(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=10,
        headers={**AUTH, "x-emulator-fault": "reset;after_chunks=2"},
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h i j"}]},
    ) as response:
        text = response.read().decode()
    assert text.count("data:") >= 2 and '"error"' in text and "[DONE]" not in text


def test_random_garbage_never_500(gateway: AsgiServer) -> None:
    rng = random.Random(7)
    paths = [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/audio/transcriptions",
        "/openai/deployments/x/chat/completions?api-version=1",
        "/openai/v1/embeddings",
        "/v1/models/%00",
    ]
    types = ["application/json", "multipart/form-data; boundary=zz", "multipart/form-data", "text/plain", ""]
    for _ in range(150):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        if rng.random() < 0.3:
            body = b'{"model": "gpt-4o", "messages": ' + body
        response = httpx.post(
            f"{gateway.url}{rng.choice(paths)}",
            content=body,
            timeout=10,
            headers={"content-type": rng.choice(types), **AUTH},
        )
        assert response.status_code < 500 or response.status_code in (502, 504), response.text
        if response.status_code >= 400 and response.headers.get("x-gateway-request-id"):
            assert "error" in response.json()
