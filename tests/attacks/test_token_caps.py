"""Attack: step around a key's `max_tokens` cap through the body: no bound, two bounds, `n`, duplicate keys.

What reaches the upstream is checked at a recording upstream: with a cap, the forwarded body always carries a
bound no larger than the cap, in every token field the request names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from aoai_gateway.access import AccessControl, MemoryLimiter
from aoai_gateway.api_call import json_call
from aoai_gateway.config import AccessSettings
from aoai_gateway.http.request import Request
from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate
from aoai_gateway.store.events import EventStore

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..recorder import Recorder
from ..servers import AsgiServer

CAP = 50


async def capped_key(tmp_path: Path, **limits: Any) -> str:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(db)
        _, secret = await KeyStore(db).create(KeySpec("capped", None, Limits(max_tokens=CAP, **limits)))
        return secret
    finally:
        await db.close()


def gateway(start: GatewayFactory, upstream: str, tmp_path: Path, policy: str = "reject") -> AsgiServer:
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream, "api_key": EMULATOR_KEY},
        {"model": "davinci", "deployment": "davinci", "endpoint": upstream, "api_key": EMULATOR_KEY},
    ]
    return start(auth="keys", data_dir=str(tmp_path), deployments=deployments, access={"max_tokens_policy": policy})


def post(server: AsgiServer, secret: str, body: bytes, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    return httpx.post(server.url + path, content=body, headers=headers, timeout=30)


def chat(**fields: Any) -> bytes:
    return orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **fields})


async def test_a_capped_request_without_a_bound_gets_one(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    rec, upstream = recorder
    secret = await capped_key(tmp_path)
    server = gateway(start_gateway, upstream.url, tmp_path)
    assert post(server, secret, chat()).status_code == 200
    assert orjson.loads(rec.requests[-1].body)["max_completion_tokens"] == CAP
    legacy = orjson.dumps({"model": "davinci", "prompt": "once upon"})
    assert post(server, secret, legacy, "/v1/completions").status_code == 200
    assert orjson.loads(rec.requests[-1].body)["max_tokens"] == CAP


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": 10, "max_completion_tokens": 5000}, "max_completion_tokens"),
        ({"max_completion_tokens": 10, "max_tokens": 5000}, "max_tokens"),
        ({"max_output_tokens": 5000}, "max_output_tokens"),
        ({"max_tokens": "100000"}, "max_tokens"),
        ({"max_tokens": 1e9}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"n": 0}, "n"),
        ({"n": 129}, "n"),
        ({"n": "5"}, "n"),
    ],
)
async def test_every_token_field_is_checked(
    fields: dict[str, Any],
    param: str,
    recorder: tuple[Recorder, AsgiServer],
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    rec, upstream = recorder
    secret = await capped_key(tmp_path)
    response = post(gateway(start_gateway, upstream.url, tmp_path), secret, chat(**fields))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert rec.requests == []


async def test_clamp_bounds_every_field(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    rec, upstream = recorder
    secret = await capped_key(tmp_path)
    server = gateway(start_gateway, upstream.url, tmp_path, policy="clamp")
    assert post(server, secret, chat(max_tokens=5000, max_completion_tokens=9000)).status_code == 200
    sent = orjson.loads(rec.requests[-1].body)
    assert sent["max_tokens"] == CAP and sent["max_completion_tokens"] == CAP


@pytest.mark.parametrize(("fields", "choices"), [({}, 1), ({"n": 8}, 8), ({"n": 2, "best_of": 5}, 5)])
async def test_n_and_best_of_multiply_the_reservation(fields: dict[str, Any], choices: int, tmp_path: Path) -> None:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(db)
        keys = KeyStore(db)
        _, secret = await keys.create(KeySpec("capped", None, Limits(max_tokens=CAP)))
        control = AccessControl(AccessSettings(), keys, EventStore(db), MemoryLimiter())
        scope = {"type": "http", "method": "POST", "path": "/v1/completions", "headers": [], "query_string": b""}
        scope["headers"] = [(b"authorization", f"Bearer {secret}".encode())]
        body = orjson.dumps({"model": "davinci", "prompt": "x" * 40, **fields})
        grant = await control.admit(Request(scope, _no_body), json_call(body, "completions"))
        assert grant.reservation == 10 + CAP * choices  # 40 characters of prompt are about 10 tokens
    finally:
        await db.close()


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-4o", "max_tokens": 10, "max_tokens": 100000, "messages": []}',
        b'{"model": "gpt-4o", "model": "gpt-4o-premium", "messages": []}',
        b'{"model": "gpt-4o", "messages": [], "stream_options": {"include_usage": false, "include_usage": true}}',
    ],
)
async def test_duplicate_keys_are_refused(
    body: bytes, recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    rec, upstream = recorder
    secret = await capped_key(tmp_path)
    response = post(gateway(start_gateway, upstream.url, tmp_path), secret, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "duplicate_key"
    assert rec.requests == []


def test_duplicate_keys_are_refused_in_passthrough_too(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory
) -> None:
    rec, upstream = recorder
    server = start_gateway(upstream.url)
    body = b'{"model": "gpt-4o", "model": "dall-e-3", "messages": []}'
    response = httpx.post(server.url + "/v1/chat/completions", content=body, headers={"api-key": "k"}, timeout=30)
    assert response.status_code == 400 and rec.requests == []
