"""Prometheus metrics of one gateway app (its own registry: no process-wide globals).

metrics = GatewayMetrics()
metrics.attempt("gpt-4o", "prod-4o", "ok", 0.120)
body = metrics.render()          # text exposition for GET /metrics
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .balancing import DeploymentHealth
from .exchange import Exchange

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
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
        self.resends = Counter(
            "aoai_gateway_upstream_resends",
            "Requests sent again to the same deployment: a pooled connection was found closed before any byte "
            "of the request was written",
            ["deployment"],
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
        self.realtime_sessions = Gauge(
            "aoai_gateway_realtime_sessions", "Realtime sessions (WebSockets) being relayed now", registry=self.registry
        )

    def watch(self, deployments: Iterable[DeploymentHealth]) -> None:
        """Per-deployment gauges read at scrape time: nothing is spent on them per request."""
        self.registry.register(_DeploymentCollector(list(deployments)))

    def _child(self, metric: Any, *labels: str) -> Any:
        # prometheus_client's labels() takes a lock and builds tuples on every call: keep the children.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def attempt(self, model: str, deployment: str, outcome: str, seconds: float | None, retry: bool) -> None:
        self._child(self.attempts, model, deployment, outcome).inc()
        if retry:
            self._child(self.retries, model, deployment).inc()
        if seconds is not None:
            self._child(self.upstream_latency, deployment).observe(seconds)

    def resend(self, deployment: str) -> None:
        """The upstream client's `on_resend` hook: `on_resend=lambda r: metrics.resend(r.deployment)`."""
        self._child(self.resends, deployment).inc()

    def usage(self, model: str, deployment: str, prompt: int, completion: int) -> None:
        self._child(self.tokens, model, deployment, "prompt").inc(prompt)
        self._child(self.tokens, model, deployment, "completion").inc(completion)

    def finished(self, exchange: Exchange) -> None:
        """Exchange listener: the request counter and duration histogram, by route, model and status."""
        model = exchange.model or ""
        self._child(self.requests, exchange.route, model, str(exchange.status)).inc()
        self._child(self.duration, exchange.route, model).observe(exchange.duration)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DeploymentCollector(Collector):
    def __init__(self, deployments: list[DeploymentHealth]) -> None:
        self._deployments = deployments

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "aoai_gateway_deployment_in_flight", "Requests in flight per deployment", labels=["model", "deployment"]
        )
        available = GaugeMetricFamily(
            "aoai_gateway_deployment_available",
            "1 when the deployment may take a request now",
            labels=["model", "deployment"],
        )
        now = time.monotonic()
        for health in self._deployments:
            labels = [health.deployment.model, health.name]
            in_flight.add_metric(labels, health.in_flight)
            available.add_metric(labels, 0 if health.unavailable_until(now) is not None else 1)
        yield in_flight
        yield available
