"""The non-chat operations through the official SDK: completions, embeddings, audio, images."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave

import httpx
import openai
import pytest
from openai import AzureOpenAI

from aoai_gateway.emulator.speech import wav_bytes

from .support import RunningEmulator


def test_legacy_completions_default_to_sixteen_tokens(emulator_client: AzureOpenAI) -> None:
    long_prompt = " ".join(["word"] * 40)
    short = emulator_client.completions.create(model="instruct", prompt="Say hi", max_tokens=50)
    long = emulator_client.completions.create(model="instruct", prompt=long_prompt)

    assert short.choices[0].text == "You said: Say hi" and short.choices[0].finish_reason == "stop"
    assert long.choices[0].finish_reason == "length"
    assert long.usage is not None and long.usage.completion_tokens == 16
    assert (short.model_extra or {})["prompt_filter_results"]


def test_legacy_completions_stream(emulator_client: AzureOpenAI) -> None:
    stream = emulator_client.completions.create(model="instruct", prompt="a b c d e", stream=True)
    text = "".join(choice.text for chunk in stream for choice in chunk.choices)

    assert text == "You said: a b c d e"


def test_embeddings_are_deterministic_unit_vectors(emulator_client: AzureOpenAI) -> None:
    result = emulator_client.embeddings.create(model="embed-small", input=["alpha", "beta", "alpha"])
    vectors = [item.embedding for item in result.data]

    assert [item.index for item in result.data] == [0, 1, 2]
    assert len(vectors[0]) == 1536
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    # The SDK asks for base64 (float32) and decodes it, hence the float32 tolerance.
    assert math.isclose(sum(v * v for v in vectors[1]), 1.0, rel_tol=1e-6)
    assert result.usage.prompt_tokens == 5 and result.model == "text-embedding-3-small"


def test_embeddings_dimensions_and_base64(emulator_client: AzureOpenAI, emulator_http: httpx.Client) -> None:
    short = emulator_client.embeddings.create(model="embed-small", input="alpha", dimensions=256)
    assert len(short.data[0].embedding) == 256

    raw = emulator_http.post(
        "/openai/deployments/embed-small/embeddings",
        params={"api-version": "2024-10-21"},
        json={"input": "alpha", "dimensions": 256, "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert len(floats) == 256
    assert all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(floats, short.data[0].embedding, strict=True)
    )

    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        emulator_client.embeddings.create(model="embed-ada", input="alpha", dimensions=256)


def test_transcription_verbose_json_with_words_and_segments(emulator_client: AzureOpenAI) -> None:
    audio = wav_bytes(2.0)
    result = emulator_client.audio.transcriptions.create(
        model="whisper",
        file=("clip.wav", audio, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )

    assert result.text == "This is an emulated transcription of clip.wav."
    assert result.duration == pytest.approx(2.0)
    assert result.segments is not None and result.segments[0].end == pytest.approx(2.0)
    assert result.words is not None and [w.word for w in result.words][:2] == ["This", "is"]
    assert result.words[-1].end == pytest.approx(2.0)


def test_transcription_plain_formats(emulator_client: AzureOpenAI) -> None:
    audio = ("clip.mp3", b"\xff\xfb" * 8000, "audio/mpeg")
    as_json = emulator_client.audio.transcriptions.create(model="whisper", file=audio)
    as_text = emulator_client.audio.transcriptions.create(model="whisper", file=audio, response_format="text")
    as_srt = emulator_client.audio.transcriptions.create(model="whisper", file=audio, response_format="srt")
    as_vtt = emulator_client.audio.transcriptions.create(model="whisper", file=audio, response_format="vtt")

    assert as_json.text == "This is an emulated transcription of clip.mp3."
    assert str(as_text).strip() == as_json.text
    assert str(as_srt).startswith("1\n00:00:00,000 --> 00:00:01,000\n")
    assert str(as_vtt).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n")


def test_translation_over_the_v1_surface(emulator_http: httpx.Client) -> None:
    # The SDK deprecates translations, so this one goes over plain HTTP, model in the form.
    response = emulator_http.post(
        "/openai/v1/audio/translations",
        files={"file": ("talk.wav", wav_bytes(1.0), "audio/wav")},
        data={"model": "whisper", "response_format": "verbose_json"},
    )

    body = response.json()
    assert body["text"] == "This is an emulated English translation of talk.wav."
    assert body["task"] == "translate" and body["duration"] == pytest.approx(1.0)


def test_speech_returns_playable_wav_and_mp3(emulator_client: AzureOpenAI) -> None:
    as_wav = emulator_client.audio.speech.create(
        model="tts", voice="alloy", input="one two three four", response_format="wav"
    )
    with wave.open(io.BytesIO(as_wav.content)) as clip:
        assert clip.getnchannels() == 1 and clip.getframerate() == 24_000
        assert clip.getnframes() / clip.getframerate() == pytest.approx(1.0)
    assert as_wav.response.headers["content-type"] == "audio/wav"

    as_mp3 = emulator_client.audio.speech.create(model="tts", voice="alloy", input="hello")
    assert as_mp3.response.headers["content-type"] == "audio/mpeg"
    assert as_mp3.content[:2] == b"\xff\xfb" and len(as_mp3.content) % 417 == 0


def test_image_generation_url_and_b64(emulator_client: AzureOpenAI, emulator_fresh: RunningEmulator) -> None:
    by_url = emulator_client.images.generate(model="dall-e-3", prompt="a lighthouse")
    by_b64 = emulator_client.images.generate(model="dall-e-3", prompt="a lighthouse", response_format="b64_json")

    item = by_url.data[0] if by_url.data else None
    assert item is not None and item.url is not None and item.revised_prompt == "a lighthouse"
    extra = item.model_extra or {}
    assert extra["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert extra["prompt_filter_results"]["jailbreak"] == {"filtered": False, "detected": False}
    png = httpx.get(item.url).content
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and item.url.startswith(emulator_fresh.base_url)
    assert by_b64.data and base64.b64decode(by_b64.data[0].b64_json or "") == png

    with pytest.raises(openai.BadRequestError, match="only request 1 image"):
        emulator_client.images.generate(model="dall-e-3", prompt="two", n=2)
