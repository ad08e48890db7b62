"""OpenTelemetry traces: a span per request and one per upstream attempt, exported by OTLP (`tracing:`).

    tracer = open_tracer(settings.tracing, stack)     # only with tracing.enabled: this module needs [otel]
    clients = tracer.wrap(clients)                     # every upstream attempt gets its span and traceparent
    Gateway(..., listeners=[..., tracer], tracer=tracer)

The request span opens when the request arrives (`started`, called by the app where the `Exchange` is made),
continuing the client's trace when it sent a W3C `traceparent`, and closes when the listeners hear the request
ended (`finished`), with what the exchange recorded. Each upstream attempt is a child span, opened by the wrapped
client as the request is sent and closed when its response is released; its own context goes upstream as
`traceparent`, replacing the client's. Attributes follow OpenTelemetry's HTTP and GenAI semantic conventions.

Never an attribute: a prompt, a completion, a header, a query string or a key. With tracing off none of this is
imported, and the request path does not change (factory.py builds it only when enabled).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import __version__
from .config import TracingSettings
from .errors import GatewayError
from .exchange import Exchange
from .proxy.usage import StreamTail, usage_of_body
from .upstream import UpstreamClient, UpstreamRequest, UpstreamResponse, UpstreamWebSocket, WebSocketRequest

# OpenTelemetry GenAI semantic conventions: the gateway's operations and providers in their words. An operation
# or provider they have no name for keeps the gateway's own (`audio/transcriptions`, `local`).
GENAI_OPERATIONS = {"chat/completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}
GENAI_PROVIDERS = {"azure": "azure.ai.openai", "openai": "openai"}

# The answer's own `model` key: unescaped quotes, so never text inside a string (a completion cannot forge it).
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_TRACE_HEADERS = ("traceparent", "tracestate")
# Probes and scrapes come every few seconds from machines: spans of them would bury the requests.
_UNTRACED = frozenset(("/healthz", "/readyz", "/metrics"))


def _http_exporter(url: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=url)


def _grpc_exporter(url: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=url)


# tracing.protocol -> its OTLP exporter (None: the OTEL_EXPORTER_OTLP_* variables and defaults pick the endpoint).
EXPORTERS: dict[str, Callable[[str | None], SpanExporter]] = {"http/protobuf": _http_exporter, "grpc": _grpc_exporter}


class _RawHeaders(Getter[Iterable[tuple[bytes, bytes]]]):
    """Reads W3C trace context from ASGI's raw header pairs."""

    def get(self, carrier: Iterable[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.encode()
        found = [value.decode("latin-1") for header, value in carrier if header.lower() == name]
        return found or None

    def keys(self, carrier: Iterable[tuple[bytes, bytes]]) -> list[str]:
        return [header.decode("latin-1").lower() for header, _ in carrier]


@dataclass(slots=True)
class _OpenRequest:
    """The span of the request in flight in this task, and what its attempts learnt for it."""

    span: Span
    exchange: Exchange
    started_ns: int
    operation: str | None = None
    response_model: str | None = None


class GatewayTracer:
    """Opens and closes the spans; an `ExchangeTracer` for the app, an `ExchangeListener`, and the clients' wrapper.

    The request in flight is found through a context variable of this tracer's own: each request runs in its
    own task, so its attempts (awaited in the same task) find its span without it being passed down.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("aoai_gateway", __version__)
        self._propagator = TraceContextTextMapPropagator()
        self._getter = _RawHeaders()
        self._open: ContextVar[_OpenRequest | None] = ContextVar("aoai_gateway_request_span", default=None)

    def started(self, exchange: Exchange, headers: Iterable[tuple[bytes, bytes]]) -> None:
        if exchange.path in _UNTRACED:
            return
        parent = self._propagator.extract(headers, Context(), self._getter)  # the client's trace, if it sent one
        started_ns = time.time_ns()
        span = self._tracer.start_span(
            exchange.method,
            parent,
            SpanKind.SERVER,
            {"http.request.method": exchange.method, "url.path": exchange.path},
            start_time=started_ns,
        )
        self._open.set(_OpenRequest(span, exchange, started_ns))

    def finished(self, exchange: Exchange) -> None:
        open_request = self._open.get()
        if open_request is None or open_request.exchange is not exchange:
            return
        self._open.set(None)
        span = open_request.span
        if span.is_recording():
            span.update_name(f"{exchange.method} {exchange.route}")
            attributes: dict[str, str | int] = {
                "http.route": exchange.route,
                "http.response.status_code": exchange.status,
                "aoai_gateway.request_id": exchange.request_id,
                "aoai_gateway.attempts": exchange.attempts,
            }
            if open_request.operation is not None:
                attributes["gen_ai.operation.name"] = GENAI_OPERATIONS.get(
                    open_request.operation, open_request.operation
                )
            if exchange.model is not None:
                attributes["gen_ai.request.model"] = exchange.model
            if open_request.response_model is not None:
                attributes["gen_ai.response.model"] = open_request.response_model
            if exchange.deployment is not None:
                attributes["aoai_gateway.deployment"] = exchange.deployment
            if exchange.usage is not None:
                attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"] = exchange.usage
            error = exchange.stream_error or (str(exchange.status) if exchange.status >= 500 else None)
            if error is not None:
                attributes["error.type"] = error
                span.set_status(StatusCode.ERROR)
            span.set_attributes(attributes)
        span.end(open_request.started_ns + int(exchange.duration * 1e9))

    def wrap(self, clients: Mapping[str, UpstreamClient]) -> dict[str, UpstreamClient]:
        """Each provider's client, sending through an attempt span."""
        return {name: _TracedClient(client, self, GENAI_PROVIDERS.get(name, name)) for name, client in clients.items()}

    def attempt(self, request: UpstreamRequest, provider: str) -> tuple[Span, _OpenRequest | None]:
        """Open the span of one upstream attempt and put its context in the request's headers."""
        open_request = self._open.get()
        parent = Context() if open_request is None else set_span_in_context(open_request.span)
        operation = GENAI_OPERATIONS.get(request.operation, request.operation)
        model = open_request.exchange.model if open_request is not None else None
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "http.request.method": request.method,
            "aoai_gateway.deployment": request.deployment,
        }
        url = urlsplit(request.url)
        if url.scheme in ("http", "https") and url.hostname:  # not an in-process model (local://)
            attributes["server.address"] = url.hostname
            attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
        if model is not None:
            attributes["gen_ai.request.model"] = model
        if open_request is not None:
            open_request.operation = request.operation
            attributes["aoai_gateway.attempt"] = open_request.exchange.attempts
        span = self._tracer.start_span(
            f"{operation} {model}" if model else operation, parent, SpanKind.CLIENT, attributes
        )
        # The upstream continues the gateway's attempt, never the client's raw header.
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, set_span_in_context(span))
        request.headers = [(k, v) for k, v in request.headers if k not in _TRACE_HEADERS] + list(carrier.items())
        return span, open_request


class _TracedClient:
    """An upstream client whose every request is an attempt span (`UpstreamClient`)."""

    __slots__ = ("_client", "_provider", "_tracer")

    def __init__(self, client: UpstreamClient, tracer: GatewayTracer, provider: str) -> None:
        self._client = client
        self._tracer = tracer
        self._provider = provider

    async def send(self, request: UpstreamRequest, *, stream: bool) -> UpstreamResponse:
        span, open_request = self._tracer.attempt(request, self._provider)
        try:
            response = await self._client.send(request, stream=stream)
        except BaseException as exc:  # a connect error, a refusal, the routing deadline or the client leaving
            _failed(span, exc)
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 400:
            span.set_attribute("error.type", str(response.status))
            span.set_status(StatusCode.ERROR)
        return _TracedResponse(response, span, open_request)

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        # A realtime session is one long exchange: the session's request span covers it; no attempt span.
        return await self._client.connect_websocket(request, timeout)

    async def aclose(self) -> None:
        await self._client.aclose()


class _TracedResponse:
    """The upstream's response (`UpstreamResponse`); the attempt's span ends when it is released."""

    __slots__ = ("_open", "_response", "_span", "audio_seconds", "raw_headers", "status")

    def __init__(self, response: UpstreamResponse, span: Span, open_request: _OpenRequest | None) -> None:
        self._response = response
        self._span = span
        self._open = open_request
        self.status = response.status
        self.raw_headers = response.raw_headers
        self.audio_seconds = response.audio_seconds

    async def read(self) -> bytes:
        try:
            body = await self._response.read()
        except BaseException as exc:
            _failed(self._span, exc)
            raise
        if self.status == 200:
            self._answered(usage_of_body(body), _MODEL.search(body))
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        tail = StreamTail()
        model: re.Match[bytes] | None = None
        try:
            async for chunk in self._response.iter_chunks():
                tail.feed(chunk)
                if model is None:
                    model = _MODEL.search(chunk)
                yield chunk
        except GeneratorExit:  # the relay stopped reading: not the upstream's failure
            raise
        except BaseException as exc:
            _failed(self._span, exc)
            raise
        if self.status == 200:
            self._answered(tail.usage(), model)

    async def release(self) -> None:
        try:
            await self._response.release()
        finally:
            self._span.end()

    def _answered(self, usage: tuple[int, int] | None, model: re.Match[bytes] | None) -> None:
        if usage is not None:
            self._span.set_attributes({"gen_ai.usage.input_tokens": usage[0], "gen_ai.usage.output_tokens": usage[1]})
        if model is not None:
            name = model[1].decode("latin-1")
            self._span.set_attribute("gen_ai.response.model", name)
            if self._open is not None:
                self._open.response_model = name


def _failed(span: Span, exc: BaseException) -> None:
    # The gateway's own error code (`upstream_timeout`, `upstream_unreachable`), else the exception's class.
    code = exc.code if isinstance(exc, GatewayError) else None
    span.set_attribute("error.type", code or type(exc).__qualname__)
    span.set_status(StatusCode.ERROR)


def open_tracer(
    settings: TracingSettings, stack: AsyncExitStack, exporter: SpanExporter | None = None
) -> GatewayTracer:
    """The tracer, its spans exported by OTLP in batches; `exporter` replaces OTLP and exports each span as it
    ends (tests). `stack` flushes and shuts it down last, in a thread: an unreachable collector blocks no request."""
    resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
    sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))  # a client's sampled flag is kept
    provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(EXPORTERS[settings.protocol](settings.traces_url())))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    stack.push_async_callback(asyncio.to_thread, provider.shutdown)
    return GatewayTracer(provider)


__all__ = ["EXPORTERS", "GENAI_OPERATIONS", "GENAI_PROVIDERS", "GatewayTracer", "open_tracer"]
