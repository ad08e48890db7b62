"""Failover over real sockets with the emulator's fault injection: no client request fails while a deployment
can serve, throttled deployments rest as long as asked, tiers, breakers, admin view and metrics."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import AsgiServer, free_port

MASTER_KEY = "master-key-for-tests-0001"
CHAT = {"model": "pool", "messages": [{"role": "user", "content": "hello there"}]}
AUTH = {"api-key": EMULATOR_KEY}


@pytest.fixture
def names(emulator_server: AsgiServer) -> Iterator[Any]:
    """Fresh emulator deployment names for one test; their faults are cleared afterwards."""
    made: list[str] = []

    def make(count: int) -> list[str]:
        batch = [f"dep-{uuid.uuid4().hex[:8]}" for _ in range(count)]
        made.extend(batch)
        return batch

    yield make
    for name in made:
        httpx.post(f"{emulator_server.url}/_emulator/faults", json={"deployment": name, "faults": []})


def set_faults(emulator: AsgiServer, deployment: str, *faults: dict[str, Any]) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/faults", json={"deployment": deployment, "faults": list(faults)})
    assert response.status_code == 200, response.text


def requests_seen(emulator: AsgiServer, deployment: str) -> int:
    stats = httpx.get(f"{emulator.url}/_emulator/stats").json()["deployments"]
    return int(stats.get(deployment, {}).get("requests", 0))


def pool(emulator: AsgiServer, *members: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"model": "pool", "deployment": name, "endpoint": options.pop("endpoint", emulator.url), **options}
        for name, options in members
    ]


def chat(gateway: AsgiServer, client: httpx.Client, **extra: Any) -> httpx.Response:
    return client.post(f"{gateway.url}/v1/chat/completions", json={**CHAT, **extra}, headers=AUTH)


def test_mixed_group_serves_every_request(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any
) -> None:
    throttled, failing, hanging, healthy = names(4)
    set_faults(emulator_server, throttled, {"kind": "429", "retry_after_ms": 60000})
    set_faults(emulator_server, failing, {"kind": "500"})
    set_faults(emulator_server, hanging, {"kind": "timeout", "sleep_s": 5})
    down = f"http://127.0.0.1:{free_port()}"
    deployments = pool(
        emulator_server, (throttled, {}), (failing, {}), (hanging, {}), ("down", {"endpoint": down}), (healthy, {})
    )
    gateway = start_gateway(
        deployments=deployments,
        upstream={"timeouts": {"read": 0.3, "connect": 1}},
        routing={"max_attempts": 5, "breaker": {"failure_threshold": 3, "open_seconds": 60}},
    )
    with httpx.Client(timeout=30) as client:
        statuses = [chat(gateway, client).status_code for _ in range(40)]
        stream_texts = []
        for _ in range(10):
            with client.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH
            ) as response:
                assert response.status_code == 200
                stream_texts.append(response.read().decode())
    assert statuses == [200] * 40
    assert all(text.rstrip().endswith("data: [DONE]") for text in stream_texts)
    # The throttled deployment asked for 60 s of rest: it saw exactly one request.
    assert requests_seen(emulator_server, throttled) == 1
    # Failing and hanging ones opened their circuits after 3 failures and got no more traffic.
    assert requests_seen(emulator_server, failing) == 3
    assert requests_seen(emulator_server, hanging) == 3


def test_stream_failing_before_first_byte_is_retried(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any
) -> None:
    resetting, healthy = names(2)
    set_faults(emulator_server, resetting, {"kind": "reset", "after_chunks": 0})
    gateway = start_gateway(deployments=pool(emulator_server, (resetting, {}), (healthy, {})))
    with httpx.Client(timeout=30) as client:
        for _ in range(6):
            with client.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH
            ) as response:
                text = response.read().decode()
            assert response.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    assert requests_seen(emulator_server, resetting) >= 1


def test_cooldown_is_honoured_then_traffic_returns(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any
) -> None:
    throttled, healthy = names(2)
    set_faults(emulator_server, throttled, {"kind": "429", "retry_after_ms": 1200})
    gateway = start_gateway(deployments=pool(emulator_server, (throttled, {}), (healthy, {})))
    with httpx.Client(timeout=30) as client:
        assert chat(gateway, client).status_code == 200  # round-robin starts on the throttled one, fails over
        set_faults(emulator_server, throttled)  # it recovers, but asked for 1.2 s of rest
        started = time.monotonic()
        while time.monotonic() - started < 0.9:
            assert chat(gateway, client).status_code == 200
        assert requests_seen(emulator_server, throttled) == 1
        time.sleep(0.5)
        for _ in range(6):
            assert chat(gateway, client).status_code == 200
    assert requests_seen(emulator_server, throttled) >= 3


def test_priority_tiers(emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any) -> None:
    primary, backup = names(2)
    gateway = start_gateway(deployments=pool(emulator_server, (primary, {}), (backup, {"priority": 1})))
    with httpx.Client(timeout=30) as client:
        for _ in range(5):
            assert chat(gateway, client).status_code == 200
        assert (requests_seen(emulator_server, primary), requests_seen(emulator_server, backup)) == (5, 0)
        set_faults(emulator_server, primary, {"kind": "429", "retry_after_ms": 30000})
        for _ in range(5):
            assert chat(gateway, client).status_code == 200
    assert (requests_seen(emulator_server, primary), requests_seen(emulator_server, backup)) == (6, 5)


def test_all_cooling_down_is_a_truthful_429(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any
) -> None:
    a, b = names(2)
    set_faults(emulator_server, a, {"kind": "429", "retry_after_ms": 4000})
    set_faults(emulator_server, b, {"kind": "429", "retry_after_ms": 2000})
    gateway = start_gateway(deployments=pool(emulator_server, (a, {}), (b, {})))
    with httpx.Client(timeout=30) as client:
        response = chat(gateway, client)
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert response.headers["retry-after"] == "2"  # the soonest deployment, not the last one tried
        again = chat(gateway, client)
    assert again.status_code == 429 and int(again.headers["retry-after"]) <= 2
    assert requests_seen(emulator_server, a) == requests_seen(emulator_server, b) == 1


def test_breaker_opens_probes_and_closes_with_admin_view(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any
) -> None:
    (flaky,) = names(1)
    set_faults(emulator_server, flaky, {"kind": "500"})
    gateway = start_gateway(
        deployments=pool(emulator_server, (flaky, {})),
        routing={"breaker": {"failure_threshold": 2, "open_seconds": 0.5}},
        admin={"master_key": MASTER_KEY},
    )

    def state() -> dict[str, Any]:
        listing = httpx.get(f"{gateway.url}/admin/deployments", headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert listing.status_code == 200
        return next(d for d in listing.json()["data"] if d["deployment"] == flaky)

    with httpx.Client(timeout=30) as client:
        assert [chat(gateway, client).status_code for _ in range(2)] == [500, 500]  # relayed: nothing else serves
        assert state()["state"] == "open_circuit"
        assert chat(gateway, client).status_code == 429  # open: not even tried
        assert requests_seen(emulator_server, flaky) == 2
        time.sleep(0.6)
        set_faults(emulator_server, flaky)
        assert state()["state"] == "half_open"
        assert chat(gateway, client).status_code == 200  # the probe
        snapshot = state()
    assert snapshot["state"] == "healthy" and snapshot["outcomes"] == {"http_500": 2, "ok": 1}
    assert snapshot["latency_ms"] is not None and "api_key" not in snapshot


def test_admin_api_needs_the_master_key(start_gateway: GatewayFactory) -> None:
    closed = start_gateway()
    response = httpx.get(f"{closed.url}/admin/deployments", headers={"authorization": "Bearer x"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "admin_disabled"
    gateway = start_gateway(admin={"master_key": MASTER_KEY})
    for headers in ({}, {"authorization": "Bearer wrong"}, {"api-key": MASTER_KEY[:-1]}):
        assert httpx.get(f"{gateway.url}/admin/deployments", headers=headers).status_code == 401
    assert httpx.get(f"{gateway.url}/admin/deployments", headers={"api-key": MASTER_KEY}).status_code == 200


def test_metrics(emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any) -> None:
    throttled, healthy = names(2)
    set_faults(emulator_server, throttled, {"kind": "429", "retry_after_ms": 60000})
    gateway = start_gateway(deployments=pool(emulator_server, (throttled, {}), (healthy, {})))
    with httpx.Client(timeout=30) as client:
        for stream in itertools.islice(itertools.cycle([False, True]), 4):
            with client.stream(
                "POST",
                f"{gateway.url}/v1/chat/completions",
                headers=AUTH,
                json={**CHAT, "stream": stream, "stream_options": {"include_usage": True}} if stream else CHAT,
            ) as response:
                response.read()
        text = client.get(f"{gateway.url}/metrics").text
    assert (
        f'aoai_gateway_upstream_attempts_total{{deployment="{throttled}",model="pool",outcome="http_429"}} 1.0' in text
    )
    assert f'aoai_gateway_upstream_attempts_total{{deployment="{healthy}",model="pool",outcome="ok"}} 4.0' in text
    assert f'aoai_gateway_upstream_retries_total{{deployment="{healthy}",model="pool"}} 1.0' in text
    assert 'aoai_gateway_requests_total{model="pool",route="/v1/chat/completions",status="200"} 4.0' in text
    assert f'aoai_gateway_tokens_total{{deployment="{healthy}",kind="completion",model="pool"}}' in text
    assert f'aoai_gateway_deployment_available{{deployment="{throttled}",model="pool"}} 0.0' in text
    assert f'aoai_gateway_deployment_in_flight{{deployment="{healthy}",model="pool"}} 0.0' in text
    assert "aoai_gateway_request_duration_seconds_bucket" in text and "aoai_gateway_streams_in_flight 0.0" in text


def test_deployments_command(
    start_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.cli import main

    gateway = start_gateway(admin={"master_key": MASTER_KEY})
    assert main(["deployments", "--url", gateway.url]) == 1  # no master key in the environment
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("AOAI_GATEWAY_MASTER_KEY", MASTER_KEY)
    assert main(["deployments", "--url", gateway.url]) == 0
    out = capsys.readouterr().out
    assert "chat-4o" in out and "healthy" in out and "STATE" in out
    assert main(["deployments", "--url", gateway.url, "--format", "json"]) == 0
    assert '"deployment": "chat-4o"' in capsys.readouterr().out


def test_answers_are_never_retried(emulator_server: AsgiServer, start_gateway: GatewayFactory, names: Any) -> None:
    first, second = names(2)
    gateway = start_gateway(deployments=pool(emulator_server, (first, {}), (second, {})))
    with httpx.Client(timeout=30) as client:
        filtered = client.post(
            f"{gateway.url}/v1/chat/completions",
            headers=AUTH,
            json={"model": "pool", "messages": [{"role": "user", "content": "[[content_filter]]"}]},
        )
        bad = client.post(f"{gateway.url}/v1/chat/completions", headers=AUTH, json={"model": "pool", "messages": []})
        unauthorized = client.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"api-key": "wrong"})
        metrics = client.get(f"{gateway.url}/metrics").text
    assert (filtered.status_code, bad.status_code, unauthorized.status_code) == (400, 400, 401)
    assert filtered.json()["error"]["code"] == "content_filter"
    # Three requests, three upstream attempts: none went to a second deployment.
    attempts = [line for line in metrics.splitlines() if line.startswith("aoai_gateway_upstream_attempts_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in attempts) == 3
    assert "aoai_gateway_upstream_retries_total{" not in metrics
