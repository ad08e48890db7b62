"""Server voice activity detection on pcm16 24 kHz audio: energy per 20 ms frame, OpenAI's three knobs.

    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    for change in vad.feed(pcm):          # any chunk size; frames are cut across chunks
        change.kind, change.at_ms         # "started" at the first loud frame, "stopped" after the silence

`threshold` (0..1, OpenAI's default 0.5) scales the level a frame's RMS must pass: 0.5 is -34 dBFS, which room
noise stays under and speech (-25 to -10 dBFS) passes. Speech starts after two loud frames in a row (a click is
one), and stops once `silence_duration_ms` of quiet frames followed it; `audio_start_ms` is moved back by
`prefix_padding_ms`, as OpenAI reports it. Times are milliseconds of audio since the buffer began.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Literal

SAMPLE_RATE = 24_000
FRAME_MS = 20
_FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
_LEVEL_AT_HALF = 0.02  # RMS / full scale that `threshold: 0.5` asks for
_ONSET_FRAMES = 2


@dataclass(frozen=True, slots=True)
class VadChange:
    kind: Literal["started", "stopped"]
    at_ms: int


class EnergyVad:
    def __init__(self, threshold: float, prefix_padding_ms: int, silence_duration_ms: int) -> None:
        self.level = _LEVEL_AT_HALF * (threshold / 0.5) ** 2 if threshold > 0 else 0.0
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_frames = max(1, math.ceil(silence_duration_ms / FRAME_MS))
        self.speaking = False
        self._pending = b""
        self._frames = 0  # frames seen since the buffer began
        self._loud = 0  # loud frames in a row
        self._quiet = 0  # quiet frames in a row while speaking

    def reset(self) -> None:
        """A new buffer: times start at 0 again (after a commit or a clear)."""
        self.speaking = False
        self._pending = b""
        self._frames = self._loud = self._quiet = 0

    def feed(self, pcm: bytes) -> list[VadChange]:
        data = self._pending + pcm
        whole = len(data) - len(data) % _FRAME_BYTES
        self._pending = data[whole:]
        changes: list[VadChange] = []
        for start in range(0, whole, _FRAME_BYTES):
            self._frames += 1
            loud = _rms(data[start : start + _FRAME_BYTES]) > self.level
            change = self._step(loud)
            if change is not None:
                changes.append(change)
        return changes

    def _step(self, loud: bool) -> VadChange | None:
        if not self.speaking:
            self._loud = self._loud + 1 if loud else 0
            if self._loud < _ONSET_FRAMES:
                return None
            self.speaking, self._quiet = True, 0
            onset_ms = (self._frames - _ONSET_FRAMES) * FRAME_MS
            return VadChange("started", max(0, onset_ms - self.prefix_padding_ms))
        self._quiet = 0 if loud else self._quiet + 1
        if self._quiet < self.silence_frames:
            return None
        self.speaking, self._loud = False, 0
        return VadChange("stopped", self._frames * FRAME_MS)


def _rms(frame: bytes) -> float:
    samples = array("h", frame)
    total = sum(s * s for s in samples)
    return math.sqrt(total / len(samples)) / 32768.0
