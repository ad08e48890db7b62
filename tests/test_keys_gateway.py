"""`auth: keys` end to end: gateway keys, allowlists, expiry, revocation, caps, streams' usage, admin API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from aoai_gateway.store import usage_report

from .conftest import EMULATOR_KEY, GatewayFactory
from .keyed import MASTER, chat, fresh_minute
from .recorder import Recorder
from .servers import AsgiServer, eventually


async def test_keys_allowlist_expiry_revocation(keyed: Any) -> None:
    start, keys, _, access = keyed
    gateway = start()
    secret = await keys.make(models=("gpt-4o",))
    assert chat(gateway, None).status_code == 401
    wrong = chat(gateway, "sk-gw-not-a-key-at-all-0000")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    client = OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert "gpt-4o" in denied.value.message
    assert [m.id for m in client.models.list()] == ["gpt-4o"]
    assert httpx.get(f"{gateway.url}/v1/models").status_code == 401
    key = await keys.store.by_secret(secret)
    await keys.store.revoke(key.id)  # another connection, as the CLI would: effective on the next request
    revoked = chat(gateway, secret)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "key_revoked"
    expired = await keys.make(expires_at=time.time() - 1)
    assert chat(gateway, expired).json()["error"]["code"] == "key_expired"
    await asyncio.sleep(0.1)
    assert EMULATOR_KEY not in access.getvalue().decode() and secret not in access.getvalue().decode()


async def test_request_caps_and_truthful_headers(keyed: Any) -> None:
    start, keys, _, _ = keyed
    gateway = start()
    secret = await keys.make(rpm=3, daily_requests=100)
    fresh_minute()
    statuses = [chat(gateway, secret).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = chat(gateway, secret)
    assert refused.json()["error"]["type"] == "requests"
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.headers["retry-after"]) <= 60
    daily = await keys.make(daily_requests=2)
    assert [chat(gateway, daily).status_code for _ in range(3)] == [200, 200, 429]


async def test_max_tokens_reject_and_clamp(keyed: Any) -> None:
    start, keys, _, _ = keyed
    secret = await keys.make(max_tokens=50)
    rejecting = start()
    response = chat(rejecting, secret, max_tokens=500)
    assert response.status_code == 400 and response.json()["error"]["param"] == "max_tokens"
    assert "50" in response.json()["error"]["message"]
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        clamping = start(upstream.url, access={"max_tokens_policy": "clamp"})
        assert chat(clamping, secret, max_tokens=500).status_code == 200
    assert json.loads(recorder.requests[-1].body)["max_tokens"] == 50
    assert recorder.requests[-1].headers["api-key"] == EMULATOR_KEY  # the gateway's key, never the client's


async def test_token_caps_settle_to_real_usage_including_streams(keyed: Any) -> None:
    start, keys, db, _ = keyed
    gateway = start()
    secret = await keys.make(tpm=10_000)
    fresh_minute()
    client = OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two three four"}], stream=True, max_tokens=50
    )
    chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)  # the client did not ask for usage: none reaches it
    asked = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert asked[-1].usage is not None  # ... but it does when the client asks
    rows = await eventually(lambda: usage_report(db, by="key"), lambda rows: bool(rows) and rows[0]["requests"] == 2)
    assert rows[0]["requests"] == 2 and rows[0]["completion_tokens"] > 0 and rows[0]["prompt_tokens"] > 0


async def test_token_budget_is_final(keyed: Any) -> None:
    start, keys, _, _ = keyed
    gateway = start()
    secret = await keys.make(budget_tokens=40)
    assert chat(gateway, secret, max_tokens=10).status_code == 200
    statuses = []
    for _ in range(10):
        response = chat(gateway, secret, max_tokens=10)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "insufficient_quota"
            assert "retry-after" not in response.headers
            break
    assert statuses[-1] == 429


async def test_admin_key_api(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    url = f"{gateway.url}/admin/keys"
    assert httpx.post(url, json={"name": "x"}).status_code == 401
    auth = {"authorization": f"Bearer {MASTER}"}
    created = httpx.post(
        url, json={"name": "team", "models": ["gpt-4o"], "rpm": 5, "expires_at": "2099-01-01T00:00:00Z"}, headers=auth
    )
    assert created.status_code == 201
    body = created.json()
    secret, key_id = body["secret"], body["id"]
    assert secret.startswith("sk-gw-") and body["rpm"] == 5
    listing = httpx.get(url, headers=auth).json()["data"]
    assert [k["id"] for k in listing] == [key_id] and secret not in json.dumps(listing)
    assert httpx.patch(f"{url}/{key_id}", json={"rpm": 7}, headers=auth).json()["rpm"] == 7
    bad = httpx.post(url, json={"name": "x", "rpm": -1}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    assert httpx.post(url, json={"name": "x", "expires_at": "2099-01-01T00:00:00"}, headers=auth).status_code == 400
    assert chat(gateway, secret).status_code == 200
    assert httpx.delete(f"{url}/{key_id}", headers=auth).json() == {"id": key_id, "revoked": True}
    assert chat(gateway, secret).status_code == 401
    assert httpx.get(f"{url}/key_nope", headers=auth).status_code == 404
    usage = httpx.get(f"{gateway.url}/admin/usage?by=key", headers=auth).json()["data"]
    assert any(row["key"] == key_id for row in usage)


def test_keys_mode_needs_upstream_keys(tmp_path: Path) -> None:
    from aoai_gateway.config import Settings

    with pytest.raises(ValueError, match="gpt-4o"):
        Settings.model_validate({"auth": "keys", "deployments": [{"model": "gpt-4o", "endpoint": "http://x"}]})


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from aoai_gateway.cli import main

    monkeypatch.setenv("AOAI_GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o,embed=prod-embed")
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "keys",
                "create",
                "--name",
                "cli",
                "--models",
                "gpt-4o, embed",
                "--rpm",
                "9",
                "--expires",
                "2099-01-01T00:00:00+01:00",
            ]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["secret"].startswith("sk-gw-") and created["models"] == ["gpt-4o", "embed"]
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert created["id"] in listing and "rpm=9" in listing and created["secret"] not in listing
    assert main(["keys", "update", created["id"], "--rpm", "11"]) == 0
    assert json.loads(capsys.readouterr().out)["rpm"] == 11
    assert main(["keys", "revoke", created["id"]]) == 0
    assert main(["keys", "show", created["id"]]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["revoked_at"] is not None
    assert main(["keys", "revoke", "key_missing"]) == 1
    assert main(["keys", "create", "--name", "x", "--expires", "tomorrow"]) == 1
    assert main(["usage", "--by", "day", "--format", "csv"]) == 0
    capsys.readouterr()
    # A model the configuration does not serve is refused in one line, for create and update alike.
    assert main(["keys", "create", "--name", "typo", "--models", "gpt-4o,gtp-4o"]) == 1
    err = capsys.readouterr().err
    assert err == "aoai-gateway: --models: unknown model 'gtp-4o'; the configuration serves: embed, gpt-4o\n"
    assert main(["keys", "update", created["id"], "--models", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err


async def test_tokens_per_minute_cap(keyed: Any) -> None:
    start, keys, _, _ = keyed
    gateway = start()
    secret = await keys.make(tpm=60)
    fresh_minute()
    first = chat(gateway, secret, max_tokens=50)  # reserves ~52 of 60, settles to its real usage (~10)
    assert first.status_code == 200
    statuses = [chat(gateway, secret, max_tokens=50).status_code for _ in range(6)]
    assert 429 in statuses
    refused = chat(gateway, secret, max_tokens=50)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    assert refused.headers["x-ratelimit-limit-tokens"] == "60"
    assert "x-ratelimit-reset-tokens" in refused.headers


async def test_daily_caps_and_budget_survive_a_restart(keyed: Any) -> None:
    start, keys, _, _ = keyed
    secret = await keys.make(daily_requests=3)
    first = start()
    assert [chat(first, secret).status_code for _ in range(2)] == [200, 200]
    first.__exit__(None, None, None)  # shutdown writes the ledger
    second = start()  # in-memory counters start empty: seeded from the ledger
    assert [chat(second, secret).status_code for _ in range(2)] == [200, 429]


async def test_model_listings_do_not_count_as_daily_requests_after_a_restart(keyed: Any) -> None:
    """A listing of models reaches no model: neither the live counter nor the ledger-seeded one counts it."""
    start, keys, _, _ = keyed
    secret = await keys.make(daily_requests=2)
    first = start()
    for _ in range(3):
        assert httpx.get(f"{first.url}/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    first.__exit__(None, None, None)  # shutdown writes the ledger: three listing rows
    second = start()
    assert [chat(second, secret).status_code for _ in range(3)] == [200, 200, 429]


async def test_keys_mode_on_postgresql(
    postgres_url: str, start_gateway: GatewayFactory, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

    db = await connect_database(postgres_url)
    await migrate(db)
    store = KeyStore(db)
    key, secret = await store.create(KeySpec("pg", None, Limits(rpm=2)))
    fresh_minute()
    gateway = start_gateway(
        auth="keys",
        database_url=postgres_url,
        # 0: read the key on every request, so another process's revocation counts at once (default: within 5 s).
        access={"usage_flush_seconds": 0.05, "key_cache_seconds": 0},
        deployments=[{"model": "gpt-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}],
    )
    assert [chat(gateway, secret).status_code for _ in range(3)] == [200, 200, 429]
    await store.revoke(key.id)
    assert chat(gateway, secret).status_code == 401
    await asyncio.sleep(0.3)
    rows = await db.fetch("SELECT status FROM usage WHERE key_id = ? ORDER BY at", [key.id])
    assert [row["status"] for row in rows] == [200, 200, 429, 401]
    await db.close()


async def test_a_client_that_leaves_after_done_still_has_its_usage_counted(keyed: Any) -> None:
    """An upstream that sends the usage event and `[DONE]` but ends its body only later: the client reads to
    `[DONE]` and closes at once, which cancels the relay mid-stream. The usage it had seen still reaches the ledger."""
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def upstream() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            events = (
                b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
                b'[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
                b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],'
                b'"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}\n\n'
                b"data: [DONE]\n\n"
            )
            connection.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                + b"%x\r\n%b\r\n" % (len(events), events)
            )
            release.wait(60)  # the body's last chunk only after the client has gone

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    start, keys, db, _ = keyed
    gateway = start(f"http://127.0.0.1:{listener.getsockname()[1]}")
    secret = await keys.make()
    try:
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        headers = {"authorization": f"Bearer {secret}"}
        with (
            httpx.Client(timeout=60) as http,
            http.stream("POST", f"{gateway.url}/v1/chat/completions", json=chat, headers=headers) as answer,
        ):
            seen = b""
            for piece in answer.iter_raw():
                seen += piece
                if b"[DONE]" in seen:
                    break  # and close, as the SDKs do
        rows = await eventually(
            lambda: usage_report(db, by="key"), lambda rows: bool(rows) and rows[0]["requests"] == 1
        )
        assert rows[0]["prompt_tokens"] == 7 and rows[0]["completion_tokens"] == 5
    finally:
        release.set()
        listener.close()
