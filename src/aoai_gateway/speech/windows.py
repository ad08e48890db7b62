"""Cutting a recording into the up-to-30-second windows Whisper decodes, at pauses that voice detection found.

spans = speech_spans(samples)                 # [(start, end), ...] in samples, from Silero VAD
windows = plan_windows(spans)                 # contiguous stretches of real audio, each at most 30 s
planner = WindowPlanner(); planner.add(block_spans(samples, 0)) ...; planner.finish()   # block by block
halves = split(window)                        # the same window cut at its middle pause, or None

A window is a stretch of the recording as it is, pauses included, from the start of one run of speech to the
end of another: Whisper hears turns and pauses where they were. (faster-whisper's own batching glues speech
runs together without their pauses; on the calls in bench/ that lost more words.) A window closes at a pause
longer than `MAX_PAUSE_SECONDS`, so long silences are never decoded, or when the next run of speech would take
it past 30 s: then at the longest pause of its last `CUT_SECONDS`, where a turn or a sentence most likely ends,
so the next window starts with it rather than mid-sentence (on the benchmark's calls: 6% fewer word errors
than cutting just before the run that does not fit; bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import VadOptions, get_speech_timestamps

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0
MAX_PAUSE_SECONDS = 3.0
CUT_SECONDS = 7.0
# Voice detection runs on blocks of a minute: its copies of the audio stay small, and the first windows can
# be decoded while it goes through the rest of the recording.
VAD_BLOCK = 60 * SAMPLE_RATE
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


def block_spans(samples: npt.NDArray[np.float32], offset: int) -> list[Span]:
    """Runs of speech in the block of `VAD_BLOCK` samples from `offset` (each run at most `WINDOW_SECONDS`)."""
    found = get_speech_timestamps(samples[offset : offset + VAD_BLOCK], _VAD)
    return [(offset + int(run["start"]), offset + int(run["end"])) for run in found]


def speech_spans(samples: npt.NDArray[np.float32]) -> list[Span]:
    """Runs of speech in the whole recording, in order."""
    return [span for offset in range(0, len(samples), VAD_BLOCK) for span in block_spans(samples, offset)]


class WindowPlanner:
    """Windows from runs of speech fed in order, block by block: each handed out once no later run can join it.

    A window takes runs while it stays within `max_seconds` and no pause is longer than `max_pause`; when the
    next run does not fit, it ends at the longest pause of its last `cut_seconds` and the runs after that pause
    start the next window.
    """

    def __init__(
        self,
        max_seconds: float = WINDOW_SECONDS,
        max_pause: float = MAX_PAUSE_SECONDS,
        cut_seconds: float = CUT_SECONDS,
    ) -> None:
        self._longest, self._pause = int(max_seconds * SAMPLE_RATE), int(max_pause * SAMPLE_RATE)
        self._cut = int(cut_seconds * SAMPLE_RATE)
        self._current: list[Span] = []

    def add(self, spans: list[Span]) -> list[Window]:
        closed = []
        for start, end in spans:
            current = self._current
            if current and start < current[-1][1]:
                # Padded into the run before, or a run cut by a block boundary: it goes on where that one ended.
                start = current[-1][1]
                if start >= end:
                    continue
            if current and start - current[-1][1] > self._pause:
                closed.append(_window(current))
                current.clear()
            elif current and end - current[0][0] > self._longest:
                keep = self._keep(current, start)
                closed.append(_window(current[:keep]))
                del current[:keep]
                if current and end - current[0][0] > self._longest:  # a long run: what is left cannot wait
                    closed.append(_window(current))
                    current.clear()
            current.append((start, end))
        return closed

    def finish(self) -> list[Window]:
        current, self._current = self._current, []
        return [_window(current)] if current else []

    def _keep(self, current: list[Span], start: int) -> int:
        """How many of `current`'s runs the closing window keeps: those before the longest pause of its last
        `cut_seconds` (the pause before the run at `start`, which does not fit, wins ties)."""
        earliest = current[0][0] + self._longest - self._cut
        keep, longest = len(current), start - current[-1][1]
        for index in range(1, len(current)):
            pause = current[index][0] - current[index - 1][1]
            if current[index][0] >= earliest and pause > longest:
                keep, longest = index, pause
        return keep


def _window(spans: list[Span]) -> Window:
    return Window(spans[0][0], spans[-1][1], tuple(spans))


def plan_windows(spans: list[Span]) -> list[Window]:
    """Every window of a recording whose runs of speech are all known."""
    planner = WindowPlanner()
    return planner.add(spans) + planner.finish()


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
