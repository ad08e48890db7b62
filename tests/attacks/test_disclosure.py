"""Attack: learn or leak more than a caller should: headers that reach the upstream, model names before a key,
metrics without the master key, an upstream refusal blamed on the caller, anonymous rows in the ledger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from aoai_gateway.store import KeySpec, KeyStore, connect_database, migrate

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..keyed import MASTER
from ..recorder import Recorder
from ..servers import AsgiServer
from .raw import raw_request

CHAT = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


def keys_gateway(start: GatewayFactory, tmp_path: Path, upstream: str, key: str = EMULATOR_KEY) -> AsgiServer:
    deployments: list[dict[str, Any]] = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream, "api_key": key},
        {"model": "secret-model", "deployment": "secret-dep", "endpoint": upstream, "api_key": key},
    ]
    return start(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments,
        admin={"master_key": MASTER},
        access={"usage_flush_seconds": 0.05},
    )


async def make_key(tmp_path: Path, models: tuple[str, ...] | None = ("gpt-4o",)) -> str:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(db)
        return (await KeyStore(db).create(KeySpec("t", models)))[1]
    finally:
        await db.close()


def test_only_allowlisted_client_headers_reach_the_upstream(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    gateway = start_gateway(upstream.url)
    headers = {
        "api-key": "client-key",
        "content-type": "application/json",
        "x-forwarded-for": "203.0.113.9",
        "forwarded": "for=203.0.113.9",
        "x-real-ip": "203.0.113.9",
        "ocp-apim-subscription-key": "apim-secret",
        "cookie": "session=1",
        "x-stainless-lang": "python",
        "openai-beta": "assistants=v2",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        # A header the request itself declares hop-by-hop must stay here even though it is allowlisted.
        "idempotency-key": "abc",
        "connection": "idempotency-key",
        "x-custom": "configured extra",
    }
    status, _, _ = raw_request(gateway.port, b"POST /v1/chat/completions HTTP/1.1", headers, CHAT)
    assert status == 200
    seen = rec.requests[-1].headers
    for dropped in ("x-forwarded-for", "forwarded", "x-real-ip", "ocp-apim-subscription-key", "cookie"):
        assert dropped not in seen, dropped
    assert "idempotency-key" not in seen
    assert seen["x-stainless-lang"] == "python" and seen["openai-beta"] == "assistants=v2"
    assert seen["traceparent"].startswith("00-4bf9") and seen["x-custom"] == "configured extra"
    assert seen["api-key"] == "client-key"  # passthrough: the caller's key, in the provider's own header


async def test_models_are_not_listed_before_the_key_and_only_the_keys_after(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    rec, upstream = recorder
    secret = await make_key(tmp_path)
    gateway = keys_gateway(start_gateway, tmp_path, upstream.url)
    unknown = b'{"model": "gpt-9", "messages": []}'
    anonymous = httpx.post(f"{gateway.url}/v1/chat/completions", content=unknown, timeout=30)
    assert anonymous.status_code == 401 and "secret-model" not in anonymous.text and "gpt-4o" not in anonymous.text
    assert httpx.get(f"{gateway.url}/v1/models", timeout=30).status_code == 401
    auth = {"authorization": f"Bearer {secret}"}
    known = httpx.post(f"{gateway.url}/v1/chat/completions", content=unknown, headers=auth, timeout=30)
    assert known.status_code == 404 and "gpt-4o" in known.text and "secret-model" not in known.text
    listing = httpx.get(f"{gateway.url}/v1/models", headers=auth, timeout=30).json()
    assert [m["id"] for m in listing["data"]] == ["gpt-4o"]
    assert rec.requests == []


def test_metrics_need_the_master_key_when_one_is_set(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    gateway = start_gateway(admin={"master_key": MASTER})
    assert httpx.get(f"{gateway.url}/metrics", timeout=30).status_code == 401
    scraped = httpx.get(f"{gateway.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
    assert scraped.status_code == 200 and "aoai_gateway_requests_total" in scraped.text
    public = start_gateway(admin={"master_key": MASTER, "public_metrics": True})
    assert httpx.get(f"{public.url}/metrics", timeout=30).status_code == 200


def test_the_deployment_header_can_be_switched_off(start_gateway: GatewayFactory) -> None:
    quiet = start_gateway(admin={"deployment_header": False})
    response = httpx.post(
        f"{quiet.url}/v1/chat/completions", content=CHAT, headers={"api-key": EMULATOR_KEY}, timeout=30
    )
    assert response.status_code == 200 and "x-gateway-deployment" not in response.headers


async def test_an_upstream_refusing_the_gateways_key_is_not_blamed_on_the_caller(
    emulator_server: AsgiServer, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    secret = await make_key(tmp_path)
    gateway = keys_gateway(start_gateway, tmp_path, emulator_server.url, key="not-the-emulators-key")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=CHAT,
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_credentials_refused" and "Your key is fine" in error["message"]
    assert "not-the-emulators-key" not in response.text


async def test_anonymous_requests_are_counted_not_ledgered(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    _, upstream = recorder
    secret = await make_key(tmp_path)
    gateway = keys_gateway(start_gateway, tmp_path, upstream.url)
    for _ in range(20):
        assert httpx.post(f"{gateway.url}/v1/chat/completions", content=CHAT, timeout=30).status_code == 401
    wrong = {"authorization": "Bearer sk-gw-not-a-key"}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", content=CHAT, headers=wrong, timeout=30).status_code == 401
    good = {"authorization": f"Bearer {secret}"}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", content=CHAT, headers=good, timeout=30).status_code == 200
    metrics = httpx.get(f"{gateway.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}, timeout=30).text
    assert 'route="/v1/chat/completions",status="401"} 21.0' in metrics
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        deadline = time.monotonic() + 30
        rows: list[dict[str, Any]] = []
        while not rows and time.monotonic() < deadline:
            rows = await db.fetch("SELECT key_id, status FROM usage")
            time.sleep(0.05)
        time.sleep(0.2)  # several flush periods: an anonymous row would have landed by now too
        rows = await db.fetch("SELECT key_id, status FROM usage")
        assert [row["status"] for row in rows] == [200]
    finally:
        await db.close()
