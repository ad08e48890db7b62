"""Skipped speech decoded again, with the real model: a window whose words stop short, start late or stretch
over a passage gets that passage back (engine.py's `_fill`, gaps.py).

Whisper's skips cannot be provoked on demand, so each test decodes five sentences (27 s, one window) as the
engine does, then takes words away as a skip would leave them, and checks that filling puts them back.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from aoai_gateway.config.speech import SpeechSettings, bundled_model_path
from aoai_gateway.speech.audio import decode_audio
from aoai_gateway.speech.engine import Decoding, SpeechModel
from aoai_gateway.speech.transcript import Segment, Word
from aoai_gateway.speech.wer import word_error_rate
from aoai_gateway.speech.windows import SAMPLE_RATE, Window, plan_windows, speech_spans

from .conftest import RECORDINGS, recording

SENTENCES = RECORDINGS[:5]


@pytest.fixture(scope="module")
def model() -> SpeechModel:
    return SpeechModel(bundled_model_path(), SpeechSettings(), replicas=1, cpu_threads=2)


@pytest.fixture(scope="module")
def sentences() -> tuple[npt.NDArray[np.float32], str]:
    """Five recordings one after another with 0.6 s pauses, and what they say."""
    pause = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    pieces = [piece for item in SENTENCES for piece in (decode_audio(recording(item["file"])), pause)]
    return np.concatenate(pieces), " ".join(item["text"] for item in SENTENCES)


def decoded(model: SpeechModel, samples: npt.NDArray[np.float32]) -> tuple[Window, list[Segment]]:
    (window,) = plan_windows(speech_spans(samples))
    (segments,) = model._decode(samples, [window], "en", Decoding(words=True))
    return window, segments


def skipped(segments: list[Segment], keep: Callable[[Word], bool]) -> list[Segment]:
    words = tuple(word for segment in segments for word in segment.words if keep(word))
    text = "".join(word.word for word in words)
    return [Segment(start=segments[0].start, end=segments[-1].end, text=text, words=words)]


def text_of(segments: list[Segment]) -> str:
    return "".join(segment.text for segment in segments)


@pytest.mark.parametrize(
    ("skip", "keep"),
    [
        ("the end", lambda word: word.end < 12.0),
        ("the start", lambda word: word.start > 11.0),
    ],
)
def test_a_skipped_start_or_end_is_decoded_again(
    model: SpeechModel, sentences: tuple[npt.NDArray[np.float32], str], skip: str, keep: Callable[[Word], bool]
) -> None:
    samples, said = sentences
    window, full = decoded(model, samples)
    short = skipped(full, keep)
    assert word_error_rate(said, text_of(short)) > 0.4, f"{skip}: the test must take a real part away"
    (filled,) = model._fill(samples, [window], [short], "en", Decoding(words=True))
    assert word_error_rate(said, text_of(filled)) <= word_error_rate(said, text_of(full)) + 0.1
    starts = [word.start for segment in filled for word in segment.words]
    assert starts == sorted(starts)


def test_a_passage_under_a_stretched_word_is_decoded_again(
    model: SpeechModel, sentences: tuple[npt.NDArray[np.float32], str]
) -> None:
    samples, said = sentences
    window, full = decoded(model, samples)
    words = [word for segment in full for word in segment.words]
    before = [word for word in words if word.end < 8.0]
    after = [word for word in words if word.start > 19.0]
    # The alignment of a window that skipped 8-19 s stretches the last word before the skip over it.
    stretched = [*before[:-1], Word(before[-1].word, before[-1].start, after[0].start - 0.05), *after]
    short = [Segment(start=0.0, end=full[-1].end, text="".join(w.word for w in stretched), words=tuple(stretched))]
    assert word_error_rate(said, text_of(short)) > 0.3
    (filled,) = model._fill(samples, [window], [short], "en", Decoding(words=True))
    assert word_error_rate(said, text_of(filled)) <= word_error_rate(said, text_of(full)) + 0.1


def test_a_window_that_said_everything_is_left_alone(
    model: SpeechModel, sentences: tuple[npt.NDArray[np.float32], str]
) -> None:
    samples, _ = sentences
    window, full = decoded(model, samples)
    (filled,) = model._fill(samples, [window], [list(full)], "en", Decoding(words=True))
    assert filled == full
