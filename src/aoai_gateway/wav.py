"""WAV files of mono 16-bit PCM, the one audio format every part that hears or speaks hands around.

wav_bytes(pcm, 16000)     # a complete RIFF/WAVE file of those samples
"""

from __future__ import annotations

import io
import wave


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return out.getvalue()


__all__ = ["wav_bytes"]
