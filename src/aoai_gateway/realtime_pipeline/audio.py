"""pcm16 24 kHz, the Realtime API's audio, to and from what the gateway's speech models take and give.

wav = as_wav(pcm)                       # a mono 24 kHz WAV for Whisper (any transcription model)
pcm = to_realtime_pcm(wav_bytes)        # a voice's WAV (eSpeak NG speaks at 22.05 kHz) as pcm16 24 kHz
for piece in chunks(pcm): ...           # ~100 ms pieces for `response.output_audio.delta`
"""

from __future__ import annotations

import io
import sys
import wave
from array import array
from collections.abc import Iterator

from ..errors import ModelAnswerError
from ..wav import wav_bytes
from .vad import SAMPLE_RATE

_CHUNK_BYTES = SAMPLE_RATE // 10 * 2


def as_wav(pcm: bytes) -> bytes:
    return wav_bytes(pcm, SAMPLE_RATE)


def to_realtime_pcm(model: str, wav: bytes) -> bytes:
    """A speech model's WAV answer as mono pcm16 at 24 kHz (linear interpolation: speech needs no better); run it
    off the event loop."""
    try:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ModelAnswerError(model, 502, f"the speech is not a WAV file ({exc})") from None
    if width != 2:
        raise ModelAnswerError(model, 502, f"the speech has {8 * width}-bit samples, not 16")
    samples = array("h", frames[: len(frames) - len(frames) % (2 * channels)])
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        samples = array("h", (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)))
    if rate != SAMPLE_RATE and samples:
        samples = _resampled(samples, rate)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _resampled(samples: array[int], rate: int) -> array[int]:
    # Linear interpolation in plain Python (no numpy in the core install): ~30 ms for a 3 s reply, off the loop.
    step = rate / SAMPLE_RATE
    last = len(samples) - 1
    out = array("h", bytes(2 * round(len(samples) / step)))
    for index in range(len(out)):
        position = index * step
        left = min(int(position), last)
        right = min(left + 1, last)
        fraction = position - left
        out[index] = round(samples[left] + (samples[right] - samples[left]) * fraction)
    return out


def chunks(pcm: bytes) -> Iterator[bytes]:
    for start in range(0, len(pcm), _CHUNK_BYTES):
        yield pcm[start : start + _CHUNK_BYTES]
