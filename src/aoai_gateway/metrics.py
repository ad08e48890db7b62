"""Prometheus metrics of one gateway app (its own registry: no process-wide globals).

metrics = GatewayMetrics()
metrics.attempt("gpt-4o", "prod-4o", "ok", 0.120)
body = metrics.render()          # text exposition for GET /metrics
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .balancing import DeploymentHealth
from .exchange import Exchange

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    """The request path's counters and histograms are plain numbers (one event loop writes them, nothing to lock)
    turned into Prometheus families when scraped; the rare ones are prometheus_client's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = _Family("aoai_gateway_requests", "Client requests answered", ("route", "model", "status"))
        self._duration = _Family(
            "aoai_gateway_request_duration_seconds",
            "Client request duration, first byte in to last byte out",
            ("route", "model"),
            buckets=_LATENCY_BUCKETS,
        )
        self._attempts = _Family(
            "aoai_gateway_upstream_attempts",
            "Upstream attempts by deployment and outcome",
            ("model", "deployment", "outcome"),
        )
        self._retries = _Family(
            "aoai_gateway_upstream_retries",
            "Attempts after the first, by the deployment that took them",
            ("model", "deployment"),
        )
        self._upstream_latency = _Family(
            "aoai_gateway_upstream_latency_seconds",
            "Time to upstream response headers",
            ("deployment",),
            buckets=_LATENCY_BUCKETS,
        )
        self._tokens = _Family(
            "aoai_gateway_tokens", "Tokens reported by upstream usage", ("model", "deployment", "kind")
        )
        self.registry.register(
            _FamiliesCollector(
                (self._requests, self._duration, self._attempts, self._retries, self._upstream_latency, self._tokens)
            )
        )
        self.resends = Counter(
            "aoai_gateway_upstream_resends",
            "Requests sent again to the same deployment: a pooled connection was found closed before any byte "
            "of the request was written",
            ["deployment"],
            registry=self.registry,
        )
        self.streams_in_flight = Gauge(
            "aoai_gateway_streams_in_flight", "Streamed responses being relayed now", registry=self.registry
        )
        self.pool_waiting = Gauge(
            "aoai_gateway_upstream_pool_waiting",
            "Requests waiting for an upstream connection: all of upstream.max_connections are busy",
            registry=self.registry,
        )
        self.realtime_sessions = Gauge(
            "aoai_gateway_realtime_sessions", "Realtime sessions (WebSockets) being relayed now", registry=self.registry
        )

    def watch(self, deployments: Iterable[DeploymentHealth]) -> None:
        """Per-deployment gauges read at scrape time: nothing is spent on them per request."""
        self.registry.register(_DeploymentCollector(list(deployments)))

    def attempt(self, model: str, deployment: str, outcome: str, seconds: float | None, retry: bool) -> None:
        self._attempts.child((model, deployment, outcome)).count += 1
        if retry:
            self._retries.child((model, deployment)).count += 1
        if seconds is not None:
            self._upstream_latency.child((deployment,)).observe(seconds)

    def resend(self, deployment: str) -> None:
        """The upstream client's `on_resend` hook: `on_resend=lambda r: metrics.resend(r.deployment)`."""
        self.resends.labels(deployment).inc()

    def usage(self, model: str, deployment: str, prompt: int, completion: int) -> None:
        self._tokens.child((model, deployment, "prompt")).count += prompt
        self._tokens.child((model, deployment, "completion")).count += completion

    def finished(self, exchange: Exchange) -> None:
        """Exchange listener: the request counter and duration histogram, by route, model and status."""
        model = exchange.model or ""
        self._requests.child((exchange.route, model, str(exchange.status))).count += 1
        self._duration.child((exchange.route, model)).observe(exchange.duration)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Series:
    """One label set's count (a counter), or its count, sum and bucket counts (a histogram)."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * len(bounds)  # not cumulative: the collector sums them
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        index = bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self.buckets[index] += 1


class _Family:
    """A counter (no `buckets`) or a histogram, by label values."""

    def __init__(self, name: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self.bounds = buckets
        self.series: dict[tuple[str, ...], _Series] = {}

    def child(self, values: tuple[str, ...]) -> _Series:
        series = self.series.get(values)
        if series is None:
            series = self.series[values] = _Series(self.bounds)
        return series

    def collect(self) -> Metric:
        labels = list(self.labels)
        if not self.bounds:
            counter = CounterMetricFamily(self.name, self.help, labels=labels)
            for values, series in list(self.series.items()):
                counter.add_metric(list(values), series.count)
            return counter
        histogram = HistogramMetricFamily(self.name, self.help, labels=labels)
        for values, series in list(self.series.items()):
            cumulative, running = [], 0
            for bound, count in zip(self.bounds, series.buckets, strict=True):
                running += count
                cumulative.append((repr(float(bound)), running))
            cumulative.append(("+Inf", series.count))
            histogram.add_metric(list(values), cumulative, series.total)
        return histogram


class _FamiliesCollector(Collector):
    def __init__(self, families: tuple[_Family, ...]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()


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
