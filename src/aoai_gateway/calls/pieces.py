"""A recording too large for one transcription request, cut into pieces at its quietest moments.

    for name, wav in audio_pieces(path, piece_seconds=600):   # ("call-part1.wav", b"RIFF..."), ...
        ...

Azure's Whisper takes at most 25 MB a request: about 2.5 minutes of CD-quality stereo WAV. When the upload is
refused as too large (413), the pipeline decodes the recording (PyAV, in-process) to 16 kHz mono, cuts it into
pieces of at most `piece_seconds` (600 s is 19.2 MB of 16-bit PCM), each cut moved to the quietest 100 ms within
the last tenth of its piece so words are not split, and transcribes the pieces in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import GatewayError
from ..speech.audio import SAMPLE_RATE, Samples, decode_audio
from ..wav import wav_bytes
from .errors import ModelCallError

_FRAME = SAMPLE_RATE // 10  # 100 ms


def audio_pieces(path: Path, piece_seconds: float) -> Iterator[tuple[str, bytes]]:
    try:
        samples = decode_audio(memoryview(path.read_bytes()))
    except GatewayError as exc:  # unreadable audio: no piece of it will do better
        raise ModelCallError(f"the recording cannot be decoded: {exc.message}", retryable=False) from None
    longest = max(int(piece_seconds * SAMPLE_RATE), 10 * _FRAME)
    start, number = 0, 1
    while start < len(samples):
        end = len(samples) if len(samples) - start <= longest else _quiet_cut(samples, start, start + longest)
        yield f"{path.stem}-part{number}.wav", _wav(samples[start:end])
        start, number = end, number + 1


def _quiet_cut(samples: Samples, start: int, end: int) -> int:
    """The end of the quietest 100 ms frame in the last tenth of [start, end)."""
    window = samples[max(start, end - (end - start) // 10) : end]
    frames = len(window) // _FRAME
    if frames < 2:
        return end
    energy = np.square(window[: frames * _FRAME].reshape(frames, _FRAME)).mean(axis=1)
    return end - len(window) + (int(np.argmin(energy)) + 1) * _FRAME


def _wav(samples: Samples) -> bytes:
    return wav_bytes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes(), SAMPLE_RATE)
