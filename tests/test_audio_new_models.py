"""The newer audio models through the gateway: gpt-4o-transcribe streaming with logprobs and chunking, and
gpt-4o-mini-tts with instructions and `stream_format: sse`, with the `openai` SDK; the multipart form reaches the
upstream byte-for-byte (but `model` on a v1-style deployment).
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from .conftest import EMULATOR_KEY, GatewayFactory
from .recorder import Recorder
from .servers import AsgiServer


def wav_bytes(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * int(16000 * seconds))
    return buffer.getvalue()


def audio_deployments(upstream: str) -> list[dict[str, Any]]:
    return [
        {"model": "gpt-4o-transcribe", "deployment": "gpt-4o-transcribe", "endpoint": upstream},
        {"model": "gpt-4o-mini-transcribe", "deployment": "mini-transcribe", "endpoint": upstream, "api_style": "v1"},
        {"model": "gpt-4o-mini-tts", "deployment": "gpt-4o-mini-tts", "endpoint": upstream},
    ]


@pytest.fixture
def client(start_gateway: GatewayFactory, emulator_server: AsgiServer) -> Iterator[openai.OpenAI]:
    gateway = start_gateway(deployments=audio_deployments(emulator_server.url))
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
def test_streamed_transcription_events_with_logprobs(client: openai.OpenAI, model: str) -> None:
    stream = client.audio.transcriptions.create(
        model=model,
        file=("clip.wav", wav_bytes()),
        stream=True,
        include=["logprobs"],
        chunking_strategy={"type": "server_vad", "silence_duration_ms": 300},
    )
    events = list(stream)
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(d.delta for d in deltas) == done.text == "This is an emulated transcription of clip.wav."
    assert deltas[0].logprobs and done.logprobs and done.usage is not None


def test_transcription_json_with_usage_and_chunking_auto(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("clip.wav", wav_bytes()), chunking_strategy="auto"
    )
    assert result.text.startswith("This is an emulated transcription") and result.usage is not None
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("clip.wav", wav_bytes()), response_format="verbose_json"
        )


def test_tts_with_instructions_as_sse(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="coral",
        input="Hello there, how are you today?",
        instructions="Speak cheerfully.",
        stream_format="sse",
        response_format="pcm",
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [orjson.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"} and events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) > 0 and not audio.strip(b"\0")  # silence, in pieces
    assert events[-1]["usage"]["total_tokens"] > 0


@pytest.fixture
def recorded(start_gateway: GatewayFactory) -> Iterator[tuple[Recorder, AsgiServer]]:
    rec = Recorder()
    with AsgiServer(rec) as upstream:
        yield rec, start_gateway(upstream.url, deployments=audio_deployments(upstream.url))


def test_new_fields_reach_the_upstream_byte_for_byte(recorded: tuple[Recorder, AsgiServer]) -> None:
    rec, gateway = recorded
    fields = {
        "include[]": ["logprobs", "logprobs"],  # repeated fields stay repeated
        "stream": "true",
        "chunking_strategy[type]": "server_vad",
        "chunking_strategy[threshold]": "0.5",
        "prompt": "names: Zoë, Ødegaard",
    }
    for model, upstream_model in (("gpt-4o-transcribe", None), ("gpt-4o-mini-transcribe", b"mini-transcribe")):
        request = httpx.Request(
            "POST",
            f"{gateway.url}/v1/audio/transcriptions",
            data={"model": model, **fields},
            files={"file": ("clip.wav", wav_bytes(0.1), "audio/wav")},
            headers={"api-key": EMULATOR_KEY},
        )
        sent = request.read()
        with httpx.Client(timeout=30) as http:
            http.send(request)
        seen = rec.requests[-1].body
        expected = (
            sent if upstream_model is None else sent.replace(b"\r\n\r\n" + model.encode(), b"\r\n\r\n" + upstream_model)
        )
        assert seen == expected
