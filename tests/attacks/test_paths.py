"""Attack: reach another deployment or another upstream path than the key allows, through the request path.

Every variant goes over a raw socket (a client library would normalise `..` away) to a keys-mode gateway whose
key may use `gpt-4o` only; the recording upstream must see nothing, and a legitimate call is booked against the
deployment actually called.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from aoai_gateway.store import KeySpec, KeyStore, connect_database, migrate

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..recorder import Recorder
from ..servers import AsgiServer
from .raw import raw_request

CHAT = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
TRAVERSALS = [
    "/openai/deployments/chat-4o/../premium-dep/chat/completions?api-version=2024-10-21",
    "/openai/deployments/chat-4o/%2e%2e/premium-dep/chat/completions?api-version=2024-10-21",
    "/openai/deployments/chat-4o/..%2Fpremium-dep%2Fchat/completions?api-version=2024-10-21",
    "/openai/deployments/chat-4o%2F..%2Fpremium-dep/chat/completions?api-version=2024-10-21",
    "/openai/deployments/../premium-dep/chat/completions?api-version=2024-10-21",
    "/openai/deployments/chat-4o/./chat/completions?api-version=2024-10-21",
    "/openai/deployments/chat-4o/chat/completions%3Fapi-version=1999-01-01?api-version=2024-10-21",
    "/openai/deployments/chat-4o/chat/completions%23frag?api-version=2024-10-21",
    "/openai/v1/../../x",
    "/openai/v1/../deployments/premium-dep/chat/completions",
    "/openai/v1/batches",
    "/openai/v1/chat/completions%3Fx=1",
    "/openai/v1/files/../chat/completions",
    "/v1/chat/../completions",
    "/v1/./chat/completions",
]


@pytest.fixture
async def limited_key(tmp_path: Path) -> str:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(db)
        _, secret = await KeyStore(db).create(KeySpec("only-4o", ("gpt-4o",)))
        return secret
    finally:
        await db.close()


def keys_gateway(start: GatewayFactory, upstream: str, tmp_path: Path) -> AsgiServer:
    deployments: list[dict[str, Any]] = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream, "api_key": EMULATOR_KEY},
        {"model": "gpt-4o-premium", "deployment": "premium-dep", "endpoint": upstream, "api_key": EMULATOR_KEY},
    ]
    return start(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments,
        access={"usage_flush_seconds": 0.05},
    )


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_never_reaches_the_upstream(
    path: str,
    recorder: tuple[Recorder, AsgiServer],
    start_gateway: GatewayFactory,
    tmp_path: Path,
    limited_key: str,
) -> None:
    rec, upstream = recorder
    gateway = keys_gateway(start_gateway, upstream.url, tmp_path)
    headers = {"authorization": f"Bearer {limited_key}", "content-type": "application/json"}
    status, _, body = raw_request(gateway.port, f"POST {path} HTTP/1.1".encode(), headers, CHAT)
    assert status in (400, 403, 404), (status, body)
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert rec.requests == []  # nothing left the gateway


def test_deployment_outside_the_allowlist_is_refused_and_the_ledger_books_the_real_one(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path, limited_key: str
) -> None:
    rec, upstream = recorder
    gateway = keys_gateway(start_gateway, upstream.url, tmp_path)
    headers = {"authorization": f"Bearer {limited_key}", "content-type": "application/json"}
    line = b"POST /openai/deployments/premium-dep/chat/completions?api-version=2024-10-21 HTTP/1.1"
    status, _, body = raw_request(gateway.port, line, headers, CHAT)
    assert status == 403 and orjson.loads(body)["error"]["code"] == "model_not_allowed"
    assert rec.requests == []
    # Its own deployment by name is fine (AzureOpenAI clients name deployments), and booked under its model.
    line = b"POST /openai/deployments/chat-4o/chat/completions?api-version=2024-10-21 HTTP/1.1"
    status, response_headers, _ = raw_request(gateway.port, line, headers, CHAT)
    assert status == 200 and response_headers["x-gateway-deployment"] == "chat-4o"
    assert [r.path for r in rec.requests] == ["/openai/deployments/chat-4o/chat/completions"]
    assert rec.requests[0].query == "api-version=2024-10-21"


async def test_ledger_names_the_deployment_that_answered(
    recorder: tuple[Recorder, AsgiServer], start_gateway: GatewayFactory, tmp_path: Path, limited_key: str
) -> None:
    _, upstream = recorder
    gateway = keys_gateway(start_gateway, upstream.url, tmp_path)
    headers = {"authorization": f"Bearer {limited_key}", "content-type": "application/json"}
    line = b"POST /openai/deployments/chat-4o/chat/completions?api-version=2024-10-21 HTTP/1.1"
    assert raw_request(gateway.port, line, headers, CHAT)[0] == 200
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        deadline = time.monotonic() + 30
        rows: list[dict[str, Any]] = []
        while not rows and time.monotonic() < deadline:
            rows = await db.fetch("SELECT model, deployment, status FROM usage")
            if not rows:
                time.sleep(0.05)
        assert rows == [{"model": "gpt-4o", "deployment": "chat-4o", "status": 200}]
    finally:
        await db.close()
