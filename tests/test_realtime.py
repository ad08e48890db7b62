"""The Realtime API relay on real sockets: the `openai` SDK's realtime client and raw `websockets` clients, through
the gateway (uvicorn with its guarded protocol) to the emulator or to a recording WebSocket upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aoai_gateway.app import create_app
from aoai_gateway.config import Deployment, Settings
from aoai_gateway.providers import AzureProvider

from .conftest import EMULATOR_KEY, gateway_settings
from .servers import AsgiServer


def ws_url(server: AsgiServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def start(settings: Settings) -> AsgiServer:
    """A gateway whose server bounds client messages like `aoai-gateway serve` does."""
    return AsgiServer(create_app(settings), settings.server, ws_max_size=settings.realtime.max_frame_bytes)


@pytest.fixture
def gateways() -> Iterator[list[AsgiServer]]:
    started: list[AsgiServer] = []
    yield started
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def relay(emulator_server: AsgiServer, gateways: list[AsgiServer]) -> AsgiServer:
    settings = gateway_settings(emulator_server.url, realtime={"max_frame_bytes": 256 * 1024})
    gateways.append(start(settings).__enter__())
    return gateways[-1]


class RecordingUpstream:
    """A WebSocket upstream of the tests' own: records each session's path, headers, subprotocol, messages and the
    close code it got; `script` is what it sends first (a close code ends the session)."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.script: list[str | bytes | int] = []
        self.url = ""

    async def handler(self, connection: ServerConnection) -> None:
        record: dict[str, Any] = {
            "path": connection.request.path if connection.request else "",
            "headers": dict(connection.request.headers.raw_items()) if connection.request else {},
            "subprotocol": connection.subprotocol,
            "messages": [],
            "closed": None,
        }
        self.sessions.append(record)
        try:
            for step in self.script:
                if isinstance(step, int):
                    await connection.close(step, "scripted")
                    return
                await connection.send(step)
            async for message in connection:
                record["messages"].append(message)
                await connection.send(message)  # echo
        finally:
            record["closed"] = connection.close_code, connection.close_reason


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    recording = RecordingUpstream()
    async with serve(recording.handler, "127.0.0.1", 0, subprotocols=None, select_subprotocol=_pick) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        recording.url = f"http://127.0.0.1:{port}"
        yield recording


def _pick(connection: ServerConnection, offered: Any) -> Any:
    return "realtime" if "realtime" in offered else None


def recorded_gateway(upstream: RecordingUpstream, gateways: list[AsgiServer], **overrides: Any) -> AsgiServer:
    deployments = [
        {
            "model": "gpt-realtime",
            "deployment": "rt-upstream",
            "provider": "openai",
            "endpoint": upstream.url + "/base",
            "api_key": "upstream-secret",
        }
    ]
    settings = Settings.model_validate({"deployments": deployments, **overrides})
    gateways.append(start(settings).__enter__())
    return gateways[-1]


# The official SDK


async def test_sdk_session_text_response_and_usage(relay: AsgiServer) -> None:
    client = AsyncOpenAI(base_url=relay.url + "/v1", api_key=EMULATOR_KEY)
    async with client.realtime.connect(model="gpt-4o-v1") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        assert (await connection.recv()).type == "session.updated"
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}
        )
        await connection.response.create()
        text = ""
        async for event in connection:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                usage = event.response.usage
                break
    assert text.startswith("Hello from the Azure OpenAI emulator")
    assert usage is not None and usage.input_tokens and usage.output_tokens


async def test_sdk_audio_in_and_out(relay: AsgiServer) -> None:
    client = AsyncOpenAI(base_url=relay.url + "/v1", api_key=EMULATOR_KEY)
    async with client.realtime.connect(model="gpt-4o") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.input_audio_buffer.append(audio="AAAAAAAA" * 1200)
        await connection.input_audio_buffer.commit()
        assert (await connection.recv()).type == "input_audio_buffer.committed"
        await connection.response.create()
        kinds = []
        async for event in connection:
            kinds.append(event.type)
            if event.type == "response.done":
                break
    assert "response.output_audio.delta" in kinds and "response.output_audio_transcript.delta" in kinds


async def test_sdk_azure_client_on_the_dated_route(relay: AsgiServer) -> None:
    client = AsyncAzureOpenAI(
        azure_endpoint=relay.url,
        api_key=EMULATOR_KEY,
        api_version="2025-04-01-preview",
        websocket_base_url=ws_url(relay, "/openai"),
    )
    async with client.realtime.connect(model="chat-4o") as connection:  # a deployment name, as Azure users send
        assert (await connection.recv()).type == "session.created"


async def test_sdk_client_secrets(relay: AsgiServer) -> None:
    async with AsyncOpenAI(base_url=relay.url + "/v1", api_key=EMULATOR_KEY) as client:
        secret = await client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-4o-v1"})
    assert secret.value.startswith("ek_") and secret.session.model == "chat-v1"
    async with AsyncOpenAI(base_url=relay.url + "/openai/v1", api_key=EMULATOR_KEY) as azure:
        assert (await azure.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-4o"})).value


def test_realtime_urls() -> None:
    ga = Deployment(model="gpt-realtime", deployment="rt", endpoint="https://r.openai.azure.com")
    assert AzureProvider().realtime_url(ga, None) == "https://r.openai.azure.com/openai/v1/realtime?model=rt"
    dated = Deployment(model="m", deployment="rt", endpoint="https://r.x", realtime_api_version="2025-04-01-preview")
    assert AzureProvider().realtime_url(dated, None) == (
        "https://r.x/openai/realtime?api-version=2025-04-01-preview&deployment=rt"
    )


# Raw WebSocket clients: order, both directions, closes


async def test_frames_relayed_in_order_both_directions(relay: AsgiServer) -> None:
    headers = {"api-key": EMULATOR_KEY}
    async with connect(ws_url(relay, "/openai/v1/realtime?model=gpt-4o-v1"), additional_headers=headers) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"
        for index in range(200):  # binary frames are echoed by the emulator
            await socket.send(index.to_bytes(4, "big") * 64)
        echoed = [await socket.recv() for _ in range(200)]
        assert echoed == [index.to_bytes(4, "big") * 64 for index in range(200)]
        await socket.send(orjson.dumps({"type": "emulator.flood", "count": 2000, "size": 100}).decode())
        started = time.monotonic()
        indices = [orjson.loads(await socket.recv())["index"] for _ in range(2000)]
        assert indices == list(range(2000)) and time.monotonic() - started < 30


async def test_upstream_close_reaches_the_client_with_its_code(relay: AsgiServer) -> None:
    headers = {"api-key": EMULATOR_KEY}
    async with connect(ws_url(relay, "/v1/realtime?model=gpt-4o-v1"), additional_headers=headers) as socket:
        await socket.recv()
        await socket.send(orjson.dumps({"type": "emulator.close", "code": 4002, "reason": "bye"}).decode())
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert socket.close_code == 4002 and socket.close_reason == "bye"


async def test_client_close_reaches_the_upstream_and_credentials_stay(
    upstream: RecordingUpstream, gateways: list[AsgiServer]
) -> None:
    gateway = recorded_gateway(upstream, gateways)
    async with connect(
        ws_url(gateway, "/v1/realtime?model=gpt-realtime"),
        additional_headers={"authorization": "Bearer client-key", "cookie": "a=b", "x-stainless-lang": "python"},
        subprotocols=["realtime", "openai-insecure-api-key.browser-key"],  # type: ignore[list-item]
    ) as socket:
        assert socket.subprotocol == "realtime"
        await socket.send("text one")
        await socket.send(b"\x00binary")
        assert await socket.recv() == "text one" and await socket.recv() == b"\x00binary"
        await socket.close(4003, "done here")
    for _ in range(100):
        if upstream.sessions and upstream.sessions[0]["closed"] is not None:
            break
        await asyncio.sleep(0.05)
    session = upstream.sessions[0]
    assert session["closed"] == (4003, "done here")
    assert session["path"] == "/base/realtime?model=rt-upstream"
    headers = {k.lower(): v for k, v in session["headers"].items()}
    assert headers["authorization"] == "Bearer upstream-secret"  # the gateway's key, never the client's
    assert "cookie" not in headers and headers["x-stainless-lang"] == "python"
    assert "openai-insecure-api-key" not in headers.get("sec-websocket-protocol", "")
    assert session["subprotocol"] == "realtime"


async def test_upstream_lost_without_close_frame_is_1011(
    upstream: RecordingUpstream, gateways: list[AsgiServer]
) -> None:
    gateway = recorded_gateway(upstream, gateways)
    upstream.script = [1011]
    async with connect(ws_url(gateway, "/v1/realtime?model=gpt-realtime")) as socket:
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert socket.close_code == 1011


async def test_session_outlives_the_header_timeout(emulator_server: AsgiServer, gateways: list[AsgiServer]) -> None:
    # The guarded HTTP protocol's head timer must not close a connection that became a WebSocket.
    settings = gateway_settings(emulator_server.url, server={"header_timeout_seconds": 0.5})
    gateway = start(settings).__enter__()
    gateways.append(gateway)
    async with connect(
        ws_url(gateway, "/v1/realtime?model=gpt-4o-v1"), additional_headers={"api-key": EMULATOR_KEY}
    ) as s:
        await s.recv()
        await asyncio.sleep(1.5)
        await s.send(b"still here")
        assert await s.recv() == b"still here"


# Refusals at the handshake, and the bounds


async def test_unknown_model_is_a_404_at_the_handshake(relay: AsgiServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(relay, "/v1/realtime?model=gpt-9"), additional_headers={"api-key": "k"}):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert orjson.loads(response.body)["error"]["code"] == "model_not_found"
    with pytest.raises(InvalidStatus) as missing:
        async with connect(ws_url(relay, "/v1/realtime"), additional_headers={"api-key": "k"}):
            pass
    assert missing.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as dated:
        async with connect(ws_url(relay, "/openai/realtime?deployment=chat-4o"), additional_headers={"api-key": "k"}):
            pass
    assert dated.value.response.status_code == 400  # api-version required there


async def test_oversize_client_frame_closes_both_sides(relay: AsgiServer) -> None:
    headers = {"api-key": EMULATOR_KEY}
    async with connect(ws_url(relay, "/v1/realtime?model=gpt-4o-v1"), additional_headers=headers, max_size=None) as s:
        await s.recv()
        await s.send(b"x" * (256 * 1024 + 1))
        with pytest.raises(ConnectionClosed):
            while True:
                await s.recv()
    assert s.close_code == 1009


async def test_oversize_upstream_frame_closes_the_client_with_1009(relay: AsgiServer) -> None:
    headers = {"api-key": EMULATOR_KEY}
    async with connect(ws_url(relay, "/v1/realtime?model=gpt-4o-v1"), additional_headers=headers, max_size=None) as s:
        await s.recv()
        await s.send(orjson.dumps({"type": "emulator.flood", "count": 1, "size": 300 * 1024}).decode())
        with pytest.raises(ConnectionClosed):
            while True:
                await s.recv()
    assert s.close_code == 1009


async def test_idle_and_stalled_clients_are_closed(emulator_server: AsgiServer, gateways: list[AsgiServer]) -> None:
    settings = gateway_settings(emulator_server.url, realtime={"idle_timeout_seconds": 1})
    gateway = start(settings).__enter__()
    gateways.append(gateway)
    url = ws_url(gateway, "/v1/realtime?model=gpt-4o-v1")
    async with connect(url, additional_headers={"api-key": EMULATOR_KEY}) as idle:
        await idle.recv()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await idle.recv()
        assert 0.5 < time.monotonic() - started < 10 and idle.close_code == 1001
    # A client that asks for a flood and stops reading: the relay's send to it stalls, and the session ends.
    async with connect(url, additional_headers={"api-key": EMULATOR_KEY}, max_queue=1, max_size=None) as stalled:
        await stalled.recv()
        await stalled.send(orjson.dumps({"type": "emulator.flood", "count": 5000, "size": 64 * 1024}).decode())
        await asyncio.sleep(4)  # not reading: buffers fill up, the gateway's send waits, the watchdog fires
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(stalled.recv(), 10)


# Keys mode: admission at the handshake, usage per response


async def wait_rows(db: Any, key_id: str, count: int) -> list[Any]:
    for _ in range(200):
        rows = await db.fetch(
            "SELECT route, status, prompt_tokens, completion_tokens FROM usage WHERE key_id = ? ORDER BY at", [key_id]
        )
        if len(rows) >= count:
            return [(r["route"], r["status"], r["prompt_tokens"], r["completion_tokens"]) for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} ledger rows")


async def test_keys_mode_handshake_and_ledger(keyed: Any) -> None:
    start_keyed, keys, db, _ = keyed
    gateway = start_keyed()
    url = ws_url(gateway, "/v1/realtime?model=gpt-4o")
    with pytest.raises(InvalidStatus) as anonymous:
        async with connect(url):
            pass
    assert anonymous.value.response.status_code == 401
    assert orjson.loads(anonymous.value.response.body)["error"]["code"] == "invalid_api_key"
    other = await keys.make(models=("text-embedding-3-small",))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"authorization": f"Bearer {other}"}):
            pass
    assert refused.value.response.status_code == 403
    assert orjson.loads(refused.value.response.body)["error"]["code"] == "model_not_allowed"

    secret = await keys.make(models=("gpt-4o",))
    key = await keys.store.by_secret(secret)
    client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key=secret)
    async with client.realtime.connect(model="gpt-4o") as connection:
        await connection.recv()
        for _ in range(2):
            await connection.response.create(response={"output_modalities": ["text"]})
            async for event in connection:
                if event.type == "response.done":
                    break
    rows = await wait_rows(db, key.id, 3)
    responses = [row for row in rows if row[1] == 200]
    assert len(responses) == 2 and all(row[2] > 0 and row[3] > 0 for row in responses)
    assert [row for row in rows if row[1] == 101] == [("/v1/realtime", 101, 0, 0)]  # the session's own row
    # Browsers send the key as a subprotocol.
    async with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{secret}"]) as browser:  # type: ignore[list-item]
        assert orjson.loads(await browser.recv())["type"] == "session.created"


async def test_keys_mode_token_cap_ends_the_session(keyed: Any) -> None:
    start_keyed, keys, _, _ = keyed
    gateway = start_keyed()
    secret = await keys.make(daily_tokens=20)
    async with connect(ws_url(gateway, "/v1/realtime?model=gpt-4o"), additional_headers={"api-key": secret}) as socket:
        await socket.recv()
        await socket.send(
            orjson.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}).decode()
        )
        with pytest.raises(ConnectionClosed):
            while True:
                await socket.recv()
    assert socket.close_code == 1008
    with pytest.raises(InvalidStatus) as spent:
        async with connect(ws_url(gateway, "/v1/realtime?model=gpt-4o"), additional_headers={"api-key": secret}):
            pass
    assert spent.value.response.status_code == 429


async def test_httpx_upstream_client_opens_sessions_with_websockets(
    emulator_server: AsgiServer, gateways: list[AsgiServer]
) -> None:
    settings = gateway_settings(emulator_server.url, upstream={"client": "httpx"})
    gateway = start(settings).__enter__()
    gateways.append(gateway)
    headers = {"api-key": EMULATOR_KEY}
    async with connect(ws_url(gateway, "/v1/realtime?model=gpt-4o-v1"), additional_headers=headers) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"
        await socket.send(b"echo")
        assert await socket.recv() == b"echo"
        await socket.send(orjson.dumps({"type": "emulator.close", "code": 4005, "reason": "x"}).decode())
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert socket.close_code == 4005
    with pytest.raises(InvalidStatus) as refused:  # the upstream's own refusal, relayed with its status
        async with connect(ws_url(gateway, "/v1/realtime?model=gpt-4o-v1"), additional_headers={"api-key": "wrong"}):
            pass
    assert refused.value.response.status_code == 401


async def test_upstream_refusal_is_relayed_with_its_status(relay: AsgiServer) -> None:
    with pytest.raises(InvalidStatus) as refused:  # passthrough: the caller's wrong key reaches the emulator
        async with connect(ws_url(relay, "/v1/realtime?model=gpt-4o-v1"), additional_headers={"api-key": "wrong"}):
            pass
    assert refused.value.response.status_code == 401
    assert orjson.loads(refused.value.response.body)["error"]["code"] == "upstream_refused_session"
