"""A long transcription gives the memory it freed back to the system (glibc would keep it in its arenas)."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import wave
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI

from aoai_gateway.speech import client as speech_client
from aoai_gateway.speech.audio import SAMPLE_RATE, decode_audio
from aoai_gateway.speech.memory import _TRIM, TRIM_AFTER_SECONDS, give_back

from .conftest import recording


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    pytest.skip("no RssAnon in /proc/self/status")


@pytest.mark.skipif(_TRIM is None, reason="malloc_trim is glibc's: nothing to give back elsewhere")
def test_freed_small_blocks_go_back_to_the_system() -> None:
    # 200 MB in 16 KB blocks: under glibc's mmap threshold, so they live in the heap and stay there when freed.
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(16 * 1024) for _ in range(12_800)]
    for block in blocks:
        ctypes.memset(block, 1, 16 * 1024)  # touched: resident
    keep = libc.malloc(64)  # allocated after the blocks: the heap's top cannot shrink past it on its own
    for block in blocks:
        libc.free(block)
    before = rss_anon_kib()  # glibc keeps most of it: the blocks lie below `keep`
    assert give_back() is True
    after = rss_anon_kib()
    libc.free(keep)
    assert before - after > 100 * 1024, (before, after)


def wav_of_seconds(seconds: float) -> bytes:
    """A recording of at least `seconds`: a spoken clip repeated with pauses between."""
    speech = decode_audio(recording("report.wav"))
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < seconds * SAMPLE_RATE:
        parts += [speech, pause]
    samples = (np.concatenate(parts) * 32767).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(samples.tobytes())
    return out.getvalue()


def test_only_a_long_transcription_gives_memory_back(client: OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(speech_client, "give_back", lambda: calls.append(True) or True)
    short = client.audio.transcriptions.create(model="whisper-local", file=("short.wav", recording("report.wav")))
    assert short.text and calls == []
    long = wav_of_seconds(TRIM_AFTER_SECONDS + 5)
    text = client.audio.transcriptions.create(model="whisper-local", file=("long.wav", long)).text
    assert len(text.split()) > 2 * len(short.text.split()) and calls == [True]
