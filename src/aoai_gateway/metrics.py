"""Prometheus metrics of one gateway app (its own registry: no process-wide globals).

metrics = GatewayMetrics()
metrics.attempt("gpt-4o", "prod-4o", "ok", 0.120)
body = metrics.render()          # text exposition for GET /metrics
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aoai_gateway_requests", "Client requests answered", ["route", "model", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "aoai_gateway_request_duration_seconds",
            "Client request duration, first byte in to last byte out",
            ["route", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "aoai_gateway_upstream_attempts",
            "Upstream attempts by deployment and outcome",
            ["model", "deployment", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "aoai_gateway_upstream_retries",
            "Attempts after the first, by the deployment that took them",
            ["model", "deployment"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "aoai_gateway_upstream_latency_seconds",
            "Time to upstream response headers",
            ["deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "aoai_gateway_tokens",
            "Tokens reported by upstream usage",
            ["model", "deployment", "kind"],
            registry=self.registry,
        )
        self.streams_in_flight = Gauge(
            "aoai_gateway_streams_in_flight", "Streamed responses being relayed now", registry=self.registry
        )
        self.in_flight = Gauge(
            "aoai_gateway_deployment_in_flight",
            "Requests in flight per deployment",
            ["deployment"],
            registry=self.registry,
        )

    def attempt(self, model: str, deployment: str, outcome: str, seconds: float | None, retry: bool) -> None:
        self.attempts.labels(model, deployment, outcome).inc()
        if retry:
            self.retries.labels(model, deployment).inc()
        if seconds is not None:
            self.upstream_latency.labels(deployment).observe(seconds)

    def usage(self, model: str, deployment: str, prompt: int, completion: int) -> None:
        self.tokens.labels(model, deployment, "prompt").inc(prompt)
        self.tokens.labels(model, deployment, "completion").inc(completion)

    def request(self, route: str, model: str | None, status: int, seconds: float) -> None:
        self.requests.labels(route, model or "", str(status)).inc()
        self.duration.labels(route, model or "").observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
