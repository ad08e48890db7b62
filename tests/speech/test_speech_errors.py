"""Unusable audio, bad parameters, size limits, a full queue: OpenAI-shaped errors from the local model."""

from __future__ import annotations

import asyncio
import io
import time
import wave

import httpx
import openai
import pytest
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings

from ..conftest import EMULATOR_KEY
from ..servers import AsgiServer
from .conftest import local_settings, long_recording, recording


def error_of(call: object) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def transcribe(client: OpenAI, name: str, data: bytes, **kwargs: object) -> object:
    return lambda: client.audio.transcriptions.create(model="whisper-local", file=(name, data), **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.wav", b"", "empty"),
        ("noise.mp3", bytes(range(256)) * 64, "corrupted or unsupported"),
        ("text.ogg", b"hello, this is not audio at all\n" * 50, "corrupted or unsupported"),
        ("cut.wav", recording("report.wav")[:60_000], "truncated"),
        ("cut.ogg", recording("office.ogg")[:9_000], "truncated"),
        ("cut.flac", recording("market.flac")[:40_000], "truncated"),
        ("cut.webm", recording("train.webm")[:9_000], "truncated"),
        ("cut.m4a", recording("meeting.m4a")[:9_000], "corrupted or unsupported"),
    ],
)
def test_unusable_audio_is_a_400(client: OpenAI, name: str, data: bytes, says: str) -> None:
    error = error_of(transcribe(client, name, data))
    assert error.status_code == 400
    body = error.body
    assert isinstance(body, dict) and body["param"] == "file" and body["type"] == "invalid_request_error"
    assert says in body["message"]


def test_too_short_audio_is_a_400(client: OpenAI) -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 800)  # 50 ms
    error = error_of(transcribe(client, "short.wav", out.getvalue()))
    assert error.status_code == 400 and "Minimum audio length is 0.1 seconds" in error.message


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"response_format": "diarized_json"}, "response_format"),
        ({"language": "xx"}, "language"),
        ({"language": "de"}, "language"),  # tiny.en speaks English only
        ({"temperature": 3}, "temperature"),
        ({"timestamp_granularities": ["word"]}, "timestamp_granularities"),  # needs verbose_json
        ({"response_format": "srt", "stream": True}, "stream"),
    ],
)
def test_bad_parameters_are_a_400(client: OpenAI, kwargs: dict[str, object], param: str) -> None:
    error = error_of(transcribe(client, "report.wav", recording("report.wav"), **kwargs))
    assert error.status_code == 400
    assert isinstance(error.body, dict) and error.body["param"] == param


def test_translation_with_an_english_only_model_is_a_clear_400(speech_gateway: AsgiServer) -> None:
    # (The SDK marks `audio.translations` deprecated, and warnings fail this suite: plain HTTP here.)
    response = httpx.post(
        f"{speech_gateway.url}/v1/audio/translations",
        files={"file": ("r.wav", recording("report.wav")), "model": (None, "whisper-local")},
        timeout=30,
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "English-only and cannot translate" in message and "multilingual" in message


def test_missing_file_is_a_400(speech_gateway: AsgiServer) -> None:
    response = httpx.post(
        f"{speech_gateway.url}/v1/audio/transcriptions", files={"model": (None, "whisper-local")}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


def big_wav(seconds: int) -> bytes:
    """Silence around one spoken sentence: past 25 MiB at 28 min, yet quick to transcribe (one window)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(2 * 16000 * seconds))
        spoken = recording("report.wav")[44:]
        w.writeframes(spoken)
        w.writeframes(bytes(2 * 16000 * 2))
    return out.getvalue()


def test_no_25_mb_wall_for_local_models_but_azure_keeps_it(client: OpenAI, speech_gateway: AsgiServer) -> None:
    audio = big_wav(14 * 60)  # 27 MB: spooled to a temporary file, decoded where it lies
    assert len(audio) > 25 * 1024 * 1024
    result = client.audio.transcriptions.create(
        model="whisper-local", file=("big.wav", audio), response_format="verbose_json"
    )
    assert "quarterly report" in result.text.lower()
    assert result.duration > 14 * 60
    azure = OpenAI(base_url=f"{speech_gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0)
    error = error_of(lambda: azure.audio.transcriptions.create(model="whisper-1", file=("big.wav", audio)))
    assert error.status_code == 413


def test_over_the_local_limit_is_a_413(emulator_server: AsgiServer) -> None:
    settings = local_settings(emulator_server.url, speech={"max_upload_bytes": 100_000})
    with (
        AsgiServer(create_app(settings)) as server,
        OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0) as client,
    ):
        error = error_of(transcribe(client, "report.wav", recording("report.wav")))  # 174 kB
        assert error.status_code == 413
        assert client.audio.transcriptions.create(model="whisper-local", file=("o.ogg", recording("office.ogg")))


async def test_full_queue_is_a_429_with_retry_after_and_the_loop_keeps_flowing(emulator_server: AsgiServer) -> None:
    settings = local_settings(emulator_server.url, speech={"workers": 1, "queue_size": 1})
    audio, _ = long_recording()
    with AsgiServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

            async def transcribe_once() -> httpx.Response:
                files = {"file": ("long.wav", audio, "audio/wav"), "model": (None, "whisper-local")}
                return await http.post("/v1/audio/transcriptions", files=files)

            async def chat_latency() -> float:
                await asyncio.sleep(0.5)  # the first transcription is running by now
                started = time.perf_counter()
                response = await http.post(
                    "/v1/chat/completions",
                    headers={"api-key": EMULATOR_KEY},
                    json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
                )
                assert response.status_code == 200
                return time.perf_counter() - started

            results = await asyncio.gather(*(transcribe_once() for _ in range(4)), chat_latency())
    statuses = sorted(r.status_code for r in results[:4])  # type: ignore[union-attr]
    # One runs, one waits, the rest are refused at once; proxying is not held up meanwhile.
    assert statuses.count(200) == 2 and statuses.count(429) == 2, statuses
    refused = next(r for r in results[:4] if r.status_code == 429)  # type: ignore[union-attr]
    assert int(refused.headers["retry-after"]) >= 1  # type: ignore[union-attr]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"  # type: ignore[union-attr]
    assert results[4] < 0.5, f"a chat call took {results[4]:.2f} s while a file was transcribing"


async def test_concurrent_requests_all_answer_correctly(speech_gateway: AsgiServer) -> None:
    names = ["report.wav", "weather.mp3", "office.ogg", "meeting.m4a"]
    async with httpx.AsyncClient(base_url=speech_gateway.url, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/audio/transcriptions",
                    files={"file": (name, recording(name)), "model": (None, "whisper-local")},
                )
                for name in names
            )
        )
    texts = [r.json()["text"].lower() for r in responses]
    assert "quarterly report" in texts[0] and "weather" in texts[1] and "office" in texts[2]
    assert "meeting" in texts[3]


def test_audio_seconds_header_for_the_ledger(speech_gateway: AsgiServer) -> None:
    response = httpx.post(
        f"{speech_gateway.url}/v1/audio/transcriptions",
        files={"file": ("report.wav", recording("report.wav")), "model": (None, "whisper-local")},
        timeout=30,
    )
    assert float(response.headers["x-gateway-audio-seconds"]) == pytest.approx(5.43, abs=0.01)


async def test_a_full_local_queue_fails_over_to_azure(emulator_server: AsgiServer) -> None:
    deployments = [
        {"model": "whisper-mixed", "deployment": "mixed-local", "provider": "local"},
        {"model": "whisper-mixed", "deployment": "whisper", "endpoint": emulator_server.url, "priority": 1},
    ]
    settings = Settings.model_validate({"deployments": deployments, "speech": {"workers": 1, "queue_size": 0}})
    # A small file: aiohttp warns about bodies over 1 MB sent to Azure, and warnings fail this suite.
    audio = recording("report.wav")
    with AsgiServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers={"api-key": EMULATOR_KEY}) as http:
            files = {"file": ("report.wav", audio, "audio/wav"), "model": (None, "whisper-mixed")}
            responses = await asyncio.gather(*(http.post("/v1/audio/transcriptions", files=files) for _ in range(2)))
    assert [r.status_code for r in responses] == [200, 200]
    texts = sorted(r.json()["text"] for r in responses)
    assert "emulated transcription" in texts[1] and "quarterly report" in texts[0].lower()
