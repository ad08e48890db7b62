"""A gateway serving the bundled tiny.en model as `whisper-local`, started once for the session, and a synthetic
multilingual model (multilingual.py) written once for the session.

Recordings: tests/speech/audio/ (made by make_audio.py from texts.json with espeak-ng; committed, so the tests
need neither espeak-ng nor a network).
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.speech.audio import decode_audio

from ..servers import AsgiServer
from .multilingual import build_multilingual_model

AUDIO = Path(__file__).parent / "audio"
RECORDINGS: list[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())


def local_settings(upstream_url: str, speech: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    deployments = [
        {"model": "whisper-local", "provider": "local"},
        {"model": "whisper-1", "deployment": "whisper", "endpoint": upstream_url},  # Azure, via the emulator
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream_url},
    ]
    return Settings.model_validate({"deployments": deployments, "speech": speech or {}, **overrides})


@pytest.fixture(scope="session")
def speech_gateway(emulator_server: AsgiServer) -> Iterator[AsgiServer]:
    with AsgiServer(create_app(local_settings(emulator_server.url))) as server:
        yield server


@pytest.fixture(scope="session")
def multilingual_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A faster-whisper model directory with 99 languages: it translates and detects (multilingual.py)."""
    return build_multilingual_model(tmp_path_factory.mktemp("multilingual-model"))


@pytest.fixture
def client(speech_gateway: AsgiServer) -> OpenAI:
    return OpenAI(base_url=f"{speech_gateway.url}/v1", api_key="any-key", max_retries=0)


def recording(name: str) -> bytes:
    return (AUDIO / name).read_bytes()


def long_recording(pause_seconds: float = 1.5) -> tuple[bytes, str]:
    """Every recording one after the other, with pauses: about 45 s, several windows. (WAV bytes, text)."""
    pause = np.zeros(int(pause_seconds * 16000), dtype=np.float32)
    pieces = []
    for entry in RECORDINGS:
        pieces += [decode_audio(memoryview(recording(entry["file"]))), pause]
    samples = (np.concatenate(pieces) * 32767).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return out.getvalue(), " ".join(entry["text"] for entry in RECORDINGS)
