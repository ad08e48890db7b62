"""Small pure parts: multipart field surgery, routing, key extraction, header rules."""

from __future__ import annotations

import httpx
import pytest

from aoai_gateway.errors import InvalidRequest, MethodNotAllowed, RouteNotFound
from aoai_gateway.http.credentials import client_key
from aoai_gateway.http.multipart import MultipartForm
from aoai_gateway.http.paths import Router
from aoai_gateway.proxy.headers import RequestHeaderRules, response_headers


def form_body() -> tuple[bytes, str]:
    request = httpx.Request(
        "POST",
        "http://x",
        data={"model": "whisper-1", "timestamp_granularities[]": ["word"]},
        files={"file": ("a b.wav", b"RIFF\r\n--data", "audio/wav")},
    )
    return request.read(), request.headers["content-type"]


def test_multipart_replace_changes_only_the_value() -> None:
    body, content_type = form_body()
    form = MultipartForm.parse(body, content_type)
    assert form.value("model") == b"whisper-1"
    replaced = form.replace("model", b"my-whisper")
    assert replaced == body.replace(b"\r\n\r\nwhisper-1\r\n", b"\r\n\r\nmy-whisper\r\n")
    assert MultipartForm.parse(replaced, content_type).value("file") == b"RIFF\r\n--data"


def test_multipart_replace_appends_a_missing_field() -> None:
    request = httpx.Request("POST", "http://x", files={"file": ("a.wav", b"abc")})
    body, content_type = request.read(), request.headers["content-type"]
    added = MultipartForm.parse(body, content_type).replace("model", b"dep")
    assert MultipartForm.parse(added, content_type).value("model") == b"dep"
    assert MultipartForm.parse(added, content_type).value("file") == b"abc"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=other"])
def test_multipart_errors(content_type: str) -> None:
    body, _ = form_body()
    with pytest.raises(InvalidRequest):
        MultipartForm.parse(body, content_type)


def test_router_exact_patterns_and_errors() -> None:
    async def handler(*_: object) -> None:
        pass

    router = Router()
    router.add("/v1/models", ["GET"], handler)
    router.add("/v1/models/{model:path}", ["GET"], handler)
    router.add("/openai/deployments/{deployment}/{operation:path}", ["POST"], handler)
    assert router.match("GET", "/v1/models")[1] == {}
    assert router.match("GET", "/v1/models/org/model-1")[1] == {"model": "org/model-1"}
    assert router.match("POST", "/openai/deployments/d/audio/speech")[1] == {
        "deployment": "d",
        "operation": "audio/speech",
    }
    with pytest.raises(RouteNotFound):
        router.match("GET", "/v2/models")
    with pytest.raises(MethodNotAllowed):
        router.match("POST", "/v1/models")


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"authorization": "Basic abc"}, None),
        ({"api-key": "k"}, "k"),
        ({"authorization": "Bearer ", "api-key": "k"}, "k"),
        ({}, None),
    ],
)
def test_client_key(headers: dict[str, str], key: str | None) -> None:
    assert client_key(headers) == key


def test_header_rules() -> None:
    # An allowlist: the configured extra header goes, everything unknown or credential-bearing stays.
    sent = RequestHeaderRules(["x-trace"]).upstream(
        [
            (b"Host", b"gw"),
            (b"Authorization", b"Bearer x"),
            (b"Connection", b"close"),
            (b"X-Trace", b"1"),
            (b"Content-Type", b"application/json"),
            (b"X-Forwarded-For", b"10.0.0.1"),
            (b"Ocp-Apim-Subscription-Key", b"secret"),
            (b"X-Unknown", b"u"),
        ]
    )
    assert sent == [("x-trace", "1"), ("content-type", "application/json")]
    back = response_headers([(b"Transfer-Encoding", b"chunked"), (b"x-ms-region", b"eu"), (b"Date", b"d")])
    assert back == [(b"x-ms-region", b"eu")]


def test_response_head_reads_what_the_relay_needs_in_one_pass() -> None:
    from aoai_gateway.proxy.headers import response_head, response_headers

    raw = [
        (b"Content-Type", b"text/event-stream; charset=utf-8"),
        (b"Content-Length", b"12"),
        (b"apim-request-id", b"abc"),
        (b"X-Gateway-Deployment", b"forged"),
        (b"Connection", b"keep-alive"),
        (b"x-ms-region", b"Sweden Central"),
    ]
    head = response_head(raw)
    assert head.headers == response_headers(raw)
    assert head.headers == [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"apim-request-id", b"abc"),
        (b"x-ms-region", b"Sweden Central"),
    ]
    assert (head.length, head.event_stream, head.request_id) == (12, True, "abc")
    assert response_head([(b"content-length", b"1e3")]).length is None
    assert response_head([(b"content-type", b"application/json")]).event_stream is False
