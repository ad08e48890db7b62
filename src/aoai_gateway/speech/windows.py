"""Cutting a recording into the up-to-30-second windows Whisper decodes, at pauses that voice detection found.

spans = speech_spans(samples)                 # [(start, end), ...] in samples, from Silero VAD
windows = plan_windows(spans)                 # contiguous stretches of real audio, each at most 30 s
halves = split(window)                        # the same window cut at its middle pause, or None

A window is a stretch of the recording as it is, pauses included, from the start of one run of speech to the
end of another: Whisper hears turns and pauses where they were. (faster-whisper's own batching glues speech
runs together without their pauses; on the calls in bench/ that lost more words.) A window closes when the
next run of speech would take it past 30 s or when a pause longer than `MAX_PAUSE_SECONDS` comes first, so
long silences are never decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import VadOptions, get_speech_timestamps

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0
MAX_PAUSE_SECONDS = 3.0
# Voice detection runs on blocks of this length: its copies of the audio stay small for hour-long files.
_VAD_BLOCK_SECONDS = 600
# Pauses of 160 ms separate runs of speech (faster-whisper's batched default); 200 ms of padding keeps the
# edges of words inside their run.
_VAD = VadOptions(min_silence_duration_ms=160, speech_pad_ms=200, max_speech_duration_s=WINDOW_SECONDS)

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # first sample
    end: int  # one past the last sample
    spans: tuple[Span, ...]  # the runs of speech inside

    @property
    def speech_seconds(self) -> float:
        return sum(end - start for start, end in self.spans) / SAMPLE_RATE

    def seconds(self) -> tuple[float, float]:
        return self.start / SAMPLE_RATE, self.end / SAMPLE_RATE


def speech_spans(samples: npt.NDArray[np.float32]) -> list[Span]:
    """Runs of speech in the whole recording, in order (each at most `WINDOW_SECONDS`)."""
    block = _VAD_BLOCK_SECONDS * SAMPLE_RATE
    spans: list[Span] = []
    for offset in range(0, len(samples), block):
        for found in get_speech_timestamps(samples[offset : offset + block], _VAD):
            start, end = offset + int(found["start"]), offset + int(found["end"])
            if spans and start <= spans[-1][1]:  # a run cut by a block boundary, or padded into the last
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
    return spans


def plan_windows(
    spans: list[Span], max_seconds: float = WINDOW_SECONDS, max_pause: float = MAX_PAUSE_SECONDS
) -> list[Window]:
    """Greedy: each window takes runs of speech while it stays within `max_seconds` and no pause is too long."""
    longest, pause = int(max_seconds * SAMPLE_RATE), int(max_pause * SAMPLE_RATE)
    windows: list[Window] = []
    current: list[Span] = []
    for span in spans:
        if current and (span[1] - current[0][0] > longest or span[0] - current[-1][1] > pause):
            windows.append(Window(current[0][0], current[-1][1], tuple(current)))
            current = []
        current.append(span)
    if current:
        windows.append(Window(current[0][0], current[-1][1], tuple(current)))
    return windows


def split(window: Window, min_seconds: float = 4.0) -> tuple[Window, Window] | None:
    """The window in two at the pause nearest its middle (at the middle when it is one run of speech)."""
    if window.speech_seconds < min_seconds:
        return None
    middle = (window.start + window.end) // 2
    if len(window.spans) > 1:
        pauses = [(window.spans[i][1] + window.spans[i + 1][0]) // 2 for i in range(len(window.spans) - 1)]
        cut = min(pauses, key=lambda at: abs(at - middle))
        left = tuple(span for span in window.spans if span[1] <= cut)
        right = tuple(span for span in window.spans if span[0] >= cut)
        return Window(window.start, left[-1][1], left), Window(right[0][0], window.end, right)
    return (
        Window(window.start, middle, ((window.start, middle),)),
        Window(middle, window.end, ((middle, window.end),)),
    )
