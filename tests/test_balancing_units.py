"""Routing parts on their own: breaker transitions, strategies, tiers, windows, retry-after parsing."""

from __future__ import annotations

from collections import Counter

import pytest

from aoai_gateway.balancing import BreakerState, CircuitBreaker, DeploymentRouter, retry_after_seconds
from aoai_gateway.balancing.window import MinuteWindow
from aoai_gateway.config import Deployment, RoutingSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deployment(name: str, **extra: object) -> Deployment:
    return Deployment.model_validate({"model": "m", "deployment": name, "endpoint": "http://x", **extra})


def router(*deployments: Deployment, **routing: object) -> tuple[DeploymentRouter, Clock]:
    clock = Clock()
    return DeploymentRouter(deployments, RoutingSettings.model_validate(routing), clock), clock


def test_breaker_transitions() -> None:
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=10)
    for _ in range(2):
        breaker.record(success=False, now=0)
    assert breaker.current(0) is BreakerState.CLOSED
    breaker.record(success=False, now=1)
    assert breaker.current(5) is BreakerState.OPEN and not breaker.allows(5)
    assert breaker.current(11) is BreakerState.HALF_OPEN
    assert breaker.allows(11) and not breaker.allows(11)  # exactly one probe
    breaker.record(success=False, now=12)  # the probe failed: open again, for a full period
    assert breaker.current(21) is BreakerState.OPEN and breaker.current(22) is BreakerState.HALF_OPEN
    assert breaker.allows(22)
    breaker.record(success=True, now=22)
    assert breaker.current(22) is BreakerState.CLOSED and breaker.failures == 0


def test_weighted_round_robin_is_smooth_and_proportional() -> None:
    r, _ = router(deployment("a", weight=5), deployment("b"), deployment("c"))
    group = r.group("m")
    picks = [r.next(group, set()).name for _ in range(70)]  # type: ignore[union-attr]
    assert Counter(picks) == {"a": 50, "b": 10, "c": 10}
    assert "aaa" not in "".join(picks)[:7]  # interleaved, not bursts: a a b a c a a


def test_least_inflight_and_lowest_latency() -> None:
    r, _ = router(deployment("a"), deployment("b"), strategy="least_inflight")
    a, b = r.group("m")
    a.in_flight = 3
    assert r.next([a, b], set()) is b
    r, _ = router(deployment("a"), deployment("b"), strategy="lowest_latency")
    a, b = r.group("m")
    a.observe_latency(50)
    b.observe_latency(20)
    assert r.next([a, b], set()) is b
    b.observe_latency(500)  # the EWMA moves a fifth of the way: 20 + 0.2 * 480 = 116
    assert b.latency_ms == pytest.approx(116) and r.next([a, b], set()) is a


def test_priority_tiers_and_failover_order() -> None:
    r, clock = router(deployment("primary"), deployment("backup", priority=1), deployment("primary2"))
    group = r.group("m")
    assert {r.next(group, set()).name for _ in range(4)} == {"primary", "primary2"}  # type: ignore[union-attr]
    primary, backup, primary2 = group
    primary.cool_down(5, clock.now)
    assert r.next(group, {primary2}) is backup  # tier 1 only when tier 0 has nothing left
    assert r.next(group, {primary2, backup}) is None
    assert r.retry_after(group) == pytest.approx(5)
    clock.now += 5
    assert r.next(group, {primary2}) is primary


def test_rpm_and_tpm_are_not_exceeded() -> None:
    r, clock = router(deployment("a", rpm=2, tpm=100))
    group = r.group("m")
    (health,) = group
    health.requests.add(clock.now, 2)
    assert r.next(group, set()) is None and r.retry_after(group) == pytest.approx(60)
    clock.now += 60
    assert r.next(group, set()) is health
    health.tokens.add(clock.now, 100)
    assert r.next(group, set()) is None


def test_minute_window_forgets() -> None:
    window = MinuteWindow()
    window.add(100.5, 3)
    window.add(130.0, 2)
    assert window.total(130) == 5 and window.total(160.2) == 2 and window.total(200) == 0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([(b"retry-after-ms", b"1500"), (b"retry-after", b"9")], 1.5),
        ([(b"x-ms-retry-after-ms", b"250")], 0.25),
        ([(b"Retry-After", b"7")], 7.0),
        ([(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")], 0.0),
        ([(b"retry-after", b"soon")], None),
        ([], None),
    ],
)
def test_retry_after_headers(headers: list[tuple[bytes, bytes]], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds
