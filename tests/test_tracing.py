"""OpenTelemetry traces through a real gateway on a socket: a server span per request, a client span per upstream
attempt with the GenAI attributes, the attempt's context sent upstream as `traceparent`, a client's trace
continued, nothing secret in any attribute; and a real `aoai-gateway serve` exporting to an OTLP receiver."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError

from aoai_gateway.api_call import json_call
from aoai_gateway.app import create_app
from aoai_gateway.config import TracingSettings
from aoai_gateway.factory import open_gateway

from .conftest import EMULATOR_KEY, gateway_settings
from .otlp import OtlpReceiver
from .recorder import Recorder
from .servers import AsgiServer, child_environ, free_port, wait_until

AUTH = {"api-key": EMULATOR_KEY}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"

Traced = Callable[..., tuple[AsgiServer, InMemorySpanExporter]]


@pytest.fixture
def traced(emulator_server: AsgiServer) -> Iterator[Traced]:
    """Start a gateway with tracing on, its spans kept in memory: `server, spans = traced(upstream_url, ...)`."""
    started: list[AsgiServer] = []

    def start(upstream_url: str | None = None, **overrides: Any) -> tuple[AsgiServer, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        tracing = {"enabled": True, **overrides.pop("tracing", {})}
        settings = gateway_settings(upstream_url or emulator_server.url, tracing=tracing, **overrides)
        server = AsgiServer(create_app(settings, span_exporter=exporter), settings.server)
        started.append(server.__enter__())
        return server, exporter

    yield start
    for server in started:
        server.__exit__(None, None, None)


def finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The spans once `count` have ended (the request's ends just after its response went out)."""
    wait_until(lambda: len(exporter.get_finished_spans()) >= count, f"{count} spans", timeout=30)
    spans = list(exporter.get_finished_spans())
    assert len(spans) == count, [s.name for s in spans]
    return spans


def split(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The request's span and its attempts' spans, in the order they started."""
    (request,) = [s for s in spans if s.kind is SpanKind.SERVER]
    attempts = sorted((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    return request, attempts


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def traceparent_of(span: ReadableSpan) -> str:
    assert span.context is not None
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_a_chat_request_is_a_server_span_with_its_attempt_as_child(traced: Traced, emulator_server: AsgiServer) -> None:
    gateway, exporter = traced()
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    request, (attempt,) = split(finished(exporter, 2))

    assert request.name == "POST /v1/chat/completions"
    assert request.parent is None
    assert attrs(request) == {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "aoai_gateway.request_id": response.headers["x-gateway-request-id"],
        "aoai_gateway.attempts": 1,
        "aoai_gateway.deployment": "chat-4o",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": answer["model"],
        "gen_ai.usage.input_tokens": answer["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": answer["usage"]["completion_tokens"],
    }

    assert attempt.name == "chat gpt-4o"
    assert attempt.parent is not None and request.context is not None
    assert (attempt.parent.trace_id, attempt.parent.span_id) == (request.context.trace_id, request.context.span_id)
    assert attrs(attempt) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "azure.ai.openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": answer["model"],
        "gen_ai.usage.input_tokens": answer["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": answer["usage"]["completion_tokens"],
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "server.address": "127.0.0.1",
        "server.port": emulator_server.port,
        "aoai_gateway.deployment": "chat-4o",
        "aoai_gateway.attempt": 1,
    }
    assert attempt.status.status_code is StatusCode.UNSET
    # The attempt lies within the request.
    assert request.start_time is not None and request.end_time is not None
    assert attempt.start_time is not None and attempt.end_time is not None
    assert request.start_time <= attempt.start_time <= attempt.end_time <= request.end_time


def test_a_streamed_answer_gives_its_usage_to_both_spans(traced: Traced) -> None:
    gateway, exporter = traced()
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]
    usage = next(json.loads(e)["usage"] for e in events if json.loads(e).get("usage"))
    models = {json.loads(e)["model"] for e in events} - {""}
    request, (attempt,) = split(finished(exporter, 2))
    for span in (request, attempt):
        assert attrs(span)["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
        assert attrs(span)["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
        assert {attrs(span)["gen_ai.response.model"]} == models
    assert attrs(attempt)["http.response.status_code"] == 200


def test_embeddings_and_an_openai_provider_use_their_genai_names(traced: Traced) -> None:
    gateway, exporter = traced()
    response = httpx.post(
        f"{gateway.url}/v1/embeddings", json={"model": "oss-llama", "input": "hi"}, headers=AUTH, timeout=30
    )
    assert response.status_code == 200, response.text
    request, (attempt,) = split(finished(exporter, 2))
    assert attrs(request)["gen_ai.operation.name"] == "embeddings"
    assert (attrs(attempt)["gen_ai.operation.name"], attrs(attempt)["gen_ai.provider.name"]) == ("embeddings", "openai")
    assert attempt.name == "embeddings oss-llama"


def test_failover_makes_one_attempt_span_per_deployment(traced: Traced, emulator_server: AsgiServer) -> None:
    failing, healthy = (f"dep-{uuid.uuid4().hex[:8]}" for _ in range(2))
    faults = {"deployment": failing, "faults": [{"kind": "500"}]}
    assert httpx.post(f"{emulator_server.url}/_emulator/faults", json=faults).status_code == 200
    try:
        pool = [
            {"model": "pool", "deployment": failing, "endpoint": emulator_server.url, "priority": 0},
            {"model": "pool", "deployment": healthy, "endpoint": emulator_server.url, "priority": 1},
        ]
        gateway, exporter = traced(deployments=pool)
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json={**CHAT, "model": "pool"}, headers=AUTH, timeout=30
        )
        assert response.status_code == 200, response.text
    finally:
        httpx.post(f"{emulator_server.url}/_emulator/faults", json={"deployment": failing, "faults": []})
    request, (first, second) = split(finished(exporter, 3))
    assert request.context is not None
    for attempt in (first, second):
        assert attempt.parent is not None and attempt.parent.span_id == request.context.span_id
    assert (attrs(first)["aoai_gateway.deployment"], attrs(first)["aoai_gateway.attempt"]) == (failing, 1)
    assert (attrs(first)["http.response.status_code"], attrs(first)["error.type"]) == (500, "500")
    assert first.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in attrs(first)
    assert (attrs(second)["aoai_gateway.deployment"], attrs(second)["aoai_gateway.attempt"]) == (healthy, 2)
    assert "error.type" not in attrs(second)
    assert (attrs(request)["aoai_gateway.attempts"], attrs(request)["aoai_gateway.deployment"]) == (2, healthy)
    assert request.status.status_code is StatusCode.UNSET


def test_an_unreachable_deployment_is_an_attempt_span_with_its_error(traced: Traced) -> None:
    down = [{"model": "gpt-4o", "deployment": "down", "endpoint": f"http://127.0.0.1:{free_port()}"}]
    gateway, exporter = traced(deployments=down)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert response.status_code == 502
    request, (attempt,) = split(finished(exporter, 2))
    assert attrs(attempt)["error.type"] == "upstream_unreachable"
    assert "http.response.status_code" not in attrs(attempt)
    assert (attrs(request)["error.type"], request.status.status_code) == ("502", StatusCode.ERROR)


def test_the_upstream_gets_the_attempts_traceparent_not_the_clients(
    traced: Traced, recorder: tuple[Recorder, AsgiServer]
) -> None:
    seen, upstream = recorder
    gateway, exporter = traced(deployments=[{"model": "gpt-4o", "deployment": "rec", "endpoint": upstream.url}])
    headers = {**AUTH, "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "vendor=opaque"}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    request, (attempt,) = split(finished(exporter, 2))

    # The client's trace goes on: the request span is the child of the client's span.
    assert request.parent is not None and request.context is not None
    assert (f"{request.parent.trace_id:032x}", f"{request.parent.span_id:016x}") == (CLIENT_TRACE, CLIENT_SPAN)
    assert request.parent.is_remote
    assert f"{request.context.trace_id:032x}" == CLIENT_TRACE
    # The upstream continues the attempt's span, exactly once, with the client's tracestate.
    sent = seen.requests[-1]
    assert [v for k, v in sent.raw_headers if k.lower() == b"traceparent"] == [traceparent_of(attempt).encode()]
    assert sent.headers["tracestate"] == "vendor=opaque"
    assert CLIENT_SPAN not in sent.headers["traceparent"]


def test_without_a_client_trace_the_gateway_starts_one(traced: Traced, recorder: tuple[Recorder, AsgiServer]) -> None:
    seen, upstream = recorder
    gateway, exporter = traced(deployments=[{"model": "gpt-4o", "deployment": "rec", "endpoint": upstream.url}])
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    request, (attempt,) = split(finished(exporter, 2))
    assert request.parent is None
    assert seen.requests[-1].headers["traceparent"] == traceparent_of(attempt)
    assert "tracestate" not in seen.requests[-1].headers


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{'0' * 32}-{CLIENT_SPAN}-01",  # an all-zero trace id is invalid
        f"ff-{CLIENT_TRACE}-{CLIENT_SPAN}-01",  # version ff is forbidden
        f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01\t, 00-{CLIENT_TRACE}-{'1' * 16}-01",
    ],
)
def test_a_malformed_client_traceparent_is_replaced_by_a_new_trace(
    traced: Traced, recorder: tuple[Recorder, AsgiServer], traceparent: str
) -> None:
    seen, upstream = recorder
    gateway, exporter = traced(deployments=[{"model": "gpt-4o", "deployment": "rec", "endpoint": upstream.url}])
    headers = {**AUTH, "traceparent": traceparent, "tracestate": "=bad,,x=" + "y" * 300}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    request, (attempt,) = split(finished(exporter, 2))
    assert request.parent is None
    assert [v for k, v in seen.requests[-1].raw_headers if k == b"traceparent"] == [traceparent_of(attempt).encode()]
    assert "tracestate" not in seen.requests[-1].headers


def test_a_client_trace_sampled_out_exports_nothing_but_still_propagates(
    traced: Traced, recorder: tuple[Recorder, AsgiServer]
) -> None:
    seen, upstream = recorder
    gateway, exporter = traced(deployments=[{"model": "gpt-4o", "deployment": "rec", "endpoint": upstream.url}])
    headers = {**AUTH, "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30).status_code == 200
    version, trace_id, span_id, flags = seen.requests[-1].headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE, "00")
    assert span_id not in (CLIENT_SPAN, "0" * 16)
    time.sleep(0.3)
    assert exporter.get_finished_spans() == ()


def test_sample_ratio_zero_traces_no_new_request(traced: Traced) -> None:
    gateway, exporter = traced(tracing={"sample_ratio": 0})
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30).status_code == 200
    time.sleep(0.3)
    assert exporter.get_finished_spans() == ()


def test_no_prompt_completion_or_key_in_any_span(traced: Traced) -> None:
    gateway, exporter = traced()
    marker = f"MARKER-{uuid.uuid4().hex}"
    body = {**CHAT, "messages": [{"role": "user", "content": f"please repeat {marker}"}], "user": marker}
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions?api-key={EMULATOR_KEY}",
        json=body,
        headers={**AUTH, "authorization": f"Bearer {EMULATOR_KEY}", "x-custom": marker},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    completion = response.json()["choices"][0]["message"]["content"]
    spans = finished(exporter, 2)
    text = "".join(span.to_json() for span in spans)  # names, attributes, events, status, resource
    assert marker not in text
    assert EMULATOR_KEY not in text
    assert len(completion) > 8 and completion not in text


def test_an_in_process_call_is_traced_too(emulator_server: AsgiServer) -> None:
    exporter = InMemorySpanExporter()
    settings = gateway_settings(emulator_server.url, tracing={"enabled": True})

    async def call() -> int:
        async with open_gateway(settings, span_exporter=exporter) as gateway:
            answer = await gateway.call(json_call(orjson.dumps(CHAT), "chat/completions"), key=EMULATOR_KEY)
            return answer.status

    assert asyncio.run(call()) == 200
    request, (attempt,) = split(finished(exporter, 2))
    assert attrs(request)["http.route"] == "/v1/chat/completions"
    assert attempt.parent is not None and request.context is not None
    assert attempt.parent.span_id == request.context.span_id


def test_off_nothing_is_built(emulator_server: AsgiServer) -> None:
    async def built() -> tuple[object, set[str]]:
        async with open_gateway(gateway_settings(emulator_server.url)) as gateway:
            return gateway.tracer, {type(client).__name__ for client in gateway.service.clients.values()}

    tracer, clients = asyncio.run(built())
    assert tracer is None
    assert clients == {"HttptoolsUpstream"}  # the pooled client itself, not wrapped


def test_tracing_settings() -> None:
    assert TracingSettings().enabled is False
    http = TracingSettings(enabled=True, endpoint="http://collector:4318/")
    assert http.traces_url() == "http://collector:4318/v1/traces"
    grpc = TracingSettings(enabled=True, endpoint="http://collector:4317", protocol="grpc")
    assert grpc.traces_url() == "http://collector:4317"
    assert TracingSettings(enabled=True).traces_url() is None  # OTEL_EXPORTER_OTLP_* decide
    for bad in ({"endpoint": "collector:4318"}, {"protocol": "thrift"}, {"sample_ratio": 1.5}):
        with pytest.raises(ValidationError):
            TracingSettings.model_validate(bad)


def test_serve_exports_to_an_otlp_collector(emulator_server: AsgiServer, tmp_path: Path) -> None:
    port = free_port()
    with OtlpReceiver() as receiver:
        config = {
            "deployments": [{"model": "gpt-4o", "deployment": "chat-4o", "endpoint": emulator_server.url}],
            "tracing": {"enabled": True, "endpoint": receiver.url, "service_name": "gateway-under-test"},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        # The collector's headers come from OpenTelemetry's own variable; spans are exported in batches, the last
        # one at shutdown.
        env = {**child_environ(), "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=t0ken"}
        log = tmp_path / "gateway.log"
        with log.open("wb") as out:
            command = [sys.executable, "-m", "aoai_gateway", "serve", "--config", "config.yaml", "--port", str(port)]
            process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=out)
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                try:
                    return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(ready, "aoai-gateway serve", alive=lambda: process.poll() is None, output=log.read_text)
            response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
            assert response.status_code == 200, response.text
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) in (0, -signal.SIGTERM), log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        spans = {span.name: span for span in receiver.spans()}
    assert set(spans) == {"POST /v1/chat/completions", "chat gpt-4o"}, log.read_text()
    request, attempt = spans["POST /v1/chat/completions"], spans["chat gpt-4o"]
    assert attempt.parent_span_id == request.span_id and attempt.trace_id == request.trace_id
    assert request.resource["service.name"] == "gateway-under-test"
    assert attempt.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert attempt.attributes["gen_ai.usage.input_tokens"] == response.json()["usage"]["prompt_tokens"]
    assert all(headers["x-collector-token"] == "t0ken" for headers in receiver.headers)
