"""A pipeline's realtime sessions under the gateway's rules and the client's control: keys mode (the key's
allowlist for the agent and for each of its models, one ledger row per model call and none for `response.done`),
responses cancelled by the client or by new speech, and the configuration's checks."""

from __future__ import annotations

import asyncio
import base64
import math
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from openai import AsyncOpenAI
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from aoai_gateway.app import InProcessCaller, create_app
from aoai_gateway.config import Settings
from aoai_gateway.config.pipeline import PipelineSettings
from aoai_gateway.realtime_pipeline.models import PipelineModels
from aoai_gateway.realtime_pipeline.session import MAX_QUEUED_EVENTS, PipelineSession
from aoai_gateway.store import connect_database, migrate
from aoai_gateway.store.keys import KeyStore

from ..conftest import EMULATOR_KEY, gateway_settings
from ..keyed import Keys
from ..servers import AsgiServer
from .conftest import Script
from .test_realtime_pipeline import AGENT, until

PIPELINE = {"transcription_model": "whisper-1", "chat_model": "gpt-4o", "speech_model": "tts-1"}
SLOW = {"model": "slow-agent", "provider": "pipeline", "pipeline": {**PIPELINE, "chat_model": "gpt-4o-slow"}}


def tone(seconds: float, level: float = 0.3) -> str:
    """A loud 440 Hz tone as base64 pcm16 24 kHz: speech to an energy detector."""
    samples = array(
        "h", (round(level * 32767 * math.sin(2 * math.pi * 440 * i / 24_000)) for i in range(round(24_000 * seconds)))
    )
    return base64.b64encode(samples.tobytes()).decode()


@pytest.fixture(scope="module")
def slow_gateway(emulator_server: AsgiServer) -> Iterator[AsgiServer]:
    settings = gateway_settings(emulator_server.url)
    data = settings.model_dump(exclude={"sources"})
    data["deployments"] = [*data["deployments"], SLOW]
    full = Settings.model_validate(data)
    with AsgiServer(create_app(full), full.server) as server:
        yield server


async def test_the_client_cancels_a_response_and_may_ask_again(slow_gateway: AsgiServer, script: Script) -> None:
    script({"content": " ".join(["word"] * 40)}, {"content": "Short."}, deployment="slow-stream")
    sdk = AsyncOpenAI(base_url=slow_gateway.url + "/v1", api_key=EMULATOR_KEY)
    async with sdk.realtime.connect(model="slow-agent") as connection:
        await connection.recv()
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await connection.recv()
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "talk"}]}
        )
        await connection.response.create()
        await until(connection, "response.output_text.delta")  # under way: 40 words at 150 ms a chunk
        await connection.response.create()
        busy = await until(connection, "error")
        assert busy[-1].error.code == "conversation_already_has_active_response"
        await connection.response.cancel()
        done = (await until(connection, "response.done"))[-1].response
        assert done.status == "cancelled" and done.status_details.reason == "client_cancelled"
        await connection.response.create()
        again = (await until(connection, "response.done"))[-1].response
    assert again.status == "completed"
    await sdk.close()


async def test_speech_during_a_response_interrupts_it(slow_gateway: AsgiServer, script: Script) -> None:
    script({"content": " ".join(["word"] * 40)}, deployment="slow-stream")
    sdk = AsyncOpenAI(base_url=slow_gateway.url + "/v1", api_key=EMULATOR_KEY)
    async with sdk.realtime.connect(model="slow-agent") as connection:
        await connection.recv()
        await connection.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "turn_detection": {"type": "server_vad"}}
        )
        await connection.recv()
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "talk"}]}
        )
        await connection.response.create()
        await until(connection, "response.output_text.delta")
        await connection.input_audio_buffer.append(audio=tone(0.2))
        events = await until(connection, "response.done")
    kinds = [e.type for e in events]
    assert "input_audio_buffer.speech_started" in kinds
    assert events[-1].response.status == "cancelled" and events[-1].response.status_details.reason == "turn_detected"
    await sdk.close()


async def test_keys_mode_allowlists_and_one_ledger_row_per_model_call(
    tmp_path: Path, emulator_server: AsgiServer, script: Script
) -> None:
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY},
        {"model": "whisper-1", "deployment": "whisper", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY},
        {"model": "tts-1", "deployment": "tts", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY},
        {"model": AGENT, "provider": "pipeline", "pipeline": PIPELINE},
    ]
    settings = gateway_settings(
        emulator_server.url,
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments,
        access={"usage_flush_seconds": 0.05},
    )
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    await migrate(db)
    keys = Keys(KeyStore(db))
    try:
        with AsgiServer(create_app(settings), settings.server) as gateway:
            url = gateway.url.replace("http://", "ws://") + f"/v1/realtime?model={AGENT}"
            chat_only = await keys.make(models=("gpt-4o",))
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, additional_headers={"authorization": f"Bearer {chat_only}"}):
                    pass
            assert refused.value.response.status_code == 403

            # The agent, but not its chat model: the response fails with the allowlist's own error.
            agent_only = await keys.make(models=(AGENT,))
            async with connect(url, additional_headers={"authorization": f"Bearer {agent_only}"}) as socket:
                await socket.recv()
                await socket.send('{"type": "response.create", "response": {"output_modalities": ["text"]}}')
                events = [orjson.loads(await socket.recv()) for _ in range(3)]
            assert [e["type"] for e in events] == ["response.created", "error", "response.done"]
            assert events[1]["error"]["code"] == "model_not_allowed"
            assert events[2]["response"]["status"] == "failed"

            script({"content": "Hello there."})
            secret = await keys.make(models=(AGENT, "gpt-4o", "whisper-1", "tts-1"))
            key = await keys.store.by_secret(secret)
            sdk = AsyncOpenAI(base_url=gateway.url + "/v1", api_key=secret)
            async with sdk, sdk.realtime.connect(model=AGENT) as connection:
                await connection.recv()
                await connection.conversation.item.create(
                    item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
                )
                await connection.response.create()
                done = (await until(connection, "response.done"))[-1].response
            assert done.status == "completed" and done.usage.output_tokens > 0
            assert key is not None
            rows = await _rows(db, key.id, 3)
    finally:
        await db.close()
    routes = sorted((route, status) for route, status, _ in rows)
    # The chat call and the speech call, each booked as made; the session's own row; no row for response.done.
    assert routes == [("/v1/audio/speech", 200), ("/v1/chat/completions", 200), ("/v1/realtime", 101)]
    assert next(tokens for route, _, tokens in rows if route == "/v1/chat/completions") == done.usage.total_tokens


async def _rows(db: Any, key_id: str, count: int) -> list[tuple[str, int, int]]:
    for _ in range(400):
        rows = await db.fetch(
            "SELECT route, status, prompt_tokens + completion_tokens AS tokens FROM usage WHERE key_id = ?", [key_id]
        )
        if len(rows) >= count:
            await asyncio.sleep(0.3)  # one more flush: a row booked twice would show now
            rows = await db.fetch(
                "SELECT route, status, prompt_tokens + completion_tokens AS tokens FROM usage WHERE key_id = ?",
                [key_id],
            )
            return [(r["route"], r["status"], r["tokens"]) for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} ledger rows")


@pytest.mark.parametrize(
    ("deployments", "wanted"),
    [
        ([{"model": AGENT, "provider": "pipeline"}], "needs a pipeline section"),
        ([{"model": "x", "endpoint": "https://a.example", "pipeline": PIPELINE}], "for provider: pipeline"),
        ([{"model": AGENT, "provider": "pipeline", "pipeline": PIPELINE}], "pipeline.transcription_model 'whisper-1'"),
        (
            [
                {"model": "gpt-4o", "endpoint": "https://a.example"},
                {"model": "whisper-1", "endpoint": "https://a.example"},
                {"model": "tts-1", "provider": "pipeline", "pipeline": PIPELINE},
            ],
            "pipeline.speech_model 'tts-1' must be a configured model that is not itself a pipeline",
        ),
    ],
)
def test_pipeline_settings_are_checked(deployments: list[dict[str, Any]], wanted: str) -> None:
    with pytest.raises(ValidationError, match=wanted.replace("(", r"\(")):
        Settings.model_validate({"deployments": deployments})


async def test_a_client_that_never_reads_is_closed_not_queued_for() -> None:
    settings = PipelineSettings(**PIPELINE)
    models = PipelineModels(cast(InProcessCaller, None), settings)  # never called: every event here is refused
    session = PipelineSession(models, settings, AGENT, None)
    for _ in range(MAX_QUEUED_EVENTS + 100):
        await session.send("{not json")
    queued = 0
    while await session.receive() is not None:
        queued += 1
    assert queued == MAX_QUEUED_EVENTS  # session.created and the errors up to the bound, then the end
    assert session.close_code == 1008
