"""A faster-whisper (CTranslate2) model, loaded once, and the pipeline that turns samples into segments.

model = SpeechModel("/path/to/model", settings.speech, workers=1, cpu_threads=2)
language, batches = model.transcribe(samples, Decoding(task="transcribe"))
for segments in batches: ...            # lists of `Segment`, in time order, as each batch finishes

With `speech.vad` on (the default), the recording is cut into windows of up to 30 s at pauses found by voice
detection (windows.py; it runs a block ahead in a helper thread) and the windows are decoded
`speech.batch_size` at a time: on two cores about 3 times faster than faster-whisper's plain sequential
`transcribe()` on a ten-minute call, at about the same word error rate (bench/README.md). Whisper sometimes
ends a window early, after a turn, and drops the rest of it, or loops; a window that comes back with far fewer
tokens than its speech should give, or looping, is cut in two at its middle pause and decoded again, and the
halves replace it when they say more without looping. With `speech.vad` off, faster-whisper's own
sequential decoding runs (temperature fallback, previous text as context): slower, kept as a reference.

`transcribe` may run in several worker threads at once: CTranslate2 releases the GIL and runs up to
`workers` batches in parallel on one copy of the weights.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel

from ..config.speech import SpeechSettings
from .languages import LANGUAGES
from .request import Task
from .transcript import Segment, Word
from .windows import SAMPLE_RATE, VAD_BLOCK, Window, WindowPlanner, block_spans, speech_spans, split

# English runs at about 3 tokens per second of speech; a window under half of that lost words.
MIN_TOKENS_PER_SECOND = 1.5
# Fast English is about 4.5 tokens a second: a window may produce 7 a second of its length (plus a sentence's
# worth). A decoder stuck in a loop stops there instead of at Whisper's 448-token limit, which made looping
# windows the slowest part of a recording (bench/README.md, calls).
MAX_TOKENS_PER_SECOND = 7
# Halves that end early too are cut again, down to an eighth of a window.
_MAX_SPLITS = 3
_MAX_COMPRESSION_RATIO = 2.4
# Captions (srt, vtt, verbose_json segments) end at a sentence or at a pause this long between two words.
_CAPTION_PAUSE_SECONDS = 1.0
_SENTENCE_END = re.compile("[.?!\u2026\u3002\uff1f\uff01]['\"\u201d\u2019)]*$")  # CJK full stops, closing quotes


class Cancelled(Exception):
    """The caller went away: the transcription stopped between two batches."""


@dataclass(frozen=True, slots=True)
class Decoding:
    """What one request asks of the model."""

    task: Task = "transcribe"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    words: bool = False  # word timestamps (also used to cut windows into sentence-long captions)
    captions: bool = False  # segments of a sentence rather than of a window


class SpeechModel:
    """One set of weights in memory, shared by every worker thread."""

    def __init__(self, path: str, settings: SpeechSettings, workers: int, cpu_threads: int) -> None:
        self.path = path
        self._settings = settings
        self._model = WhisperModel(
            path,
            device="cpu",
            compute_type=settings.compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        # The languages this model has a token for: 99 up to large-v2, 100 (with yue) from large-v3
        # (faster-whisper's `supported_languages` lists all 100 for any multilingual model).
        tokenizer = self._model.hf_tokenizer
        self.languages = (
            frozenset(code for code in LANGUAGES if tokenizer.token_to_id(f"<|{code}|>") is not None)
            if self.multilingual
            else frozenset({"en"})
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Run voice detection and one decode on a second of silence, so the first request does not pay for
        onnxruntime's session and CTranslate2's first allocations, and a broken model fails at start-up."""
        silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
        speech_spans(silence)
        self._decode(silence, [Window(0, SAMPLE_RATE, ((0, SAMPLE_RATE),))], "en", Decoding())

    def transcribe(
        self,
        samples: npt.NDArray[np.float32],
        decoding: Decoding,
        *,
        first_batch: int | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> tuple[str, Iterator[list[Segment]]]:
        """The language (ISO-639-1) and the segments, one list per decoded batch of windows.

        `first_batch`: size of the first batch (1 for streams, so the first words come sooner).
        """
        if not self._settings.vad:
            return self._sequential(samples, decoding)
        windows = _windows_ahead(samples)
        first = next(windows, None)
        language = decoding.language or self._language(samples, first)
        ordered = windows if first is None else itertools.chain([first], windows)
        return language, self._batches(samples, ordered, language, decoding, first_batch, cancelled)

    def _language(self, samples: npt.NDArray[np.float32], first: Window | None) -> str:
        if not self.multilingual or first is None:
            return "en"
        language, _, _ = self._model.detect_language(audio=samples[first.start : first.end])
        return str(language)

    def _batches(
        self,
        samples: npt.NDArray[np.float32],
        windows: Iterator[Window],
        language: str,
        decoding: Decoding,
        first_batch: int | None,
        cancelled: Callable[[], bool],
    ) -> Iterator[list[Segment]]:
        batch: list[Window] = []
        size = first_batch or self._settings.batch_size
        for window in itertools.chain(windows, [None]):
            if window is not None:
                batch.append(window)
            if batch and (len(batch) >= size or window is None):
                if cancelled():
                    raise Cancelled
                decoded = self._decode(samples, batch, language, decoding)
                decoded = self._recover(samples, batch, decoded, language, decoding)
                yield [segment for segments in decoded for segment in segments]
                batch, size = [], self._settings.batch_size

    def _recover(
        self,
        samples: npt.NDArray[np.float32],
        batch: Sequence[Window],
        decoded: list[list[Segment]],
        language: str,
        decoding: Decoding,
        depth: int = 0,
    ) -> list[list[Segment]]:
        """Decode again, in halves, windows that came back with too little text or stuck in a loop.

        The halves replace the window when they do not loop and say more (or the window looped); halves that
        fail the same test are cut again.
        """
        retry: list[tuple[int, tuple[Window, Window]]] = []
        for index, (window, segments) in enumerate(zip(batch, decoded, strict=True)):
            halves = split(window)
            if halves is not None and (_rate(window, segments) < MIN_TOKENS_PER_SECOND or _looping(segments)):
                retry.append((index, halves))
        if not retry or depth >= _MAX_SPLITS:
            return decoded
        windows = [half for _, halves in retry for half in halves]
        again = self._decode(samples, windows, language, decoding)
        again = self._recover(samples, windows, again, language, decoding, depth + 1)
        for n, (index, _) in enumerate(retry):
            candidate = again[2 * n] + again[2 * n + 1]
            if not _looping(candidate) and (
                _looping(decoded[index]) or _token_count(candidate) > _token_count(decoded[index])
            ):
                decoded[index] = candidate
        return decoded

    def _decode(
        self, samples: npt.NDArray[np.float32], windows: Sequence[Window], language: str, decoding: Decoding
    ) -> list[list[Segment]]:
        """One batched CTranslate2 call over `windows`; the segments of each window, in order."""
        pipeline = BatchedInferencePipeline(self._model)  # per call: it keeps per-transcription state
        clips = [{"start": w.start / SAMPLE_RATE, "end": w.end / SAMPLE_RATE} for w in windows]
        segments, _ = pipeline.transcribe(
            samples,
            language=language,
            task=decoding.task,
            beam_size=self._settings.beam_size,
            temperature=decoding.temperature or 0.0,
            initial_prompt=decoding.prompt,
            without_timestamps=True,
            word_timestamps=decoding.words,
            vad_filter=False,
            clip_timestamps=clips,
            batch_size=len(windows),
            max_new_tokens=_token_budget(windows),
        )
        # Segments name their window by `seek`, the window's start in 10 ms frames, computed as faster-whisper does.
        by_seek: dict[int, list[Segment]] = {_seek(clip["start"]): [] for clip in clips}
        for found in segments:
            converted = _segment(found, decoding.temperature or 0.0)
            if converted.text.strip():
                by_seek.setdefault(int(found.seek), []).append(converted)
        out = [by_seek.get(_seek(clip["start"]), []) for clip in clips]
        if decoding.captions:
            out = [[caption for s in window for caption in self._captions(s)] for window in out]
        return out

    def _captions(self, segment: Segment) -> list[Segment]:
        """A window's segment as sentence-long segments, cut where its words end a sentence or pause."""
        if not segment.words:
            return [segment]
        groups: list[list[Word]] = [[]]
        for word, following in zip(segment.words, (*segment.words[1:], None), strict=True):
            groups[-1].append(word)
            if following is not None and (
                _SENTENCE_END.search(word.word.strip()) or following.start - word.end >= _CAPTION_PAUSE_SECONDS
            ):
                groups.append([])
        out = []
        for words in groups:
            text = "".join(word.word for word in words)
            tokens = tuple(self._model.hf_tokenizer.encode(text, add_special_tokens=False).ids)
            out.append(
                Segment(
                    start=words[0].start,
                    end=words[-1].end,
                    text=text,
                    tokens=tokens,
                    temperature=segment.temperature,
                    avg_logprob=segment.avg_logprob,
                    compression_ratio=segment.compression_ratio,
                    no_speech_prob=segment.no_speech_prob,
                    words=tuple(words),
                )
            )
        return out

    def _sequential(self, samples: npt.NDArray[np.float32], decoding: Decoding) -> tuple[str, Iterator[list[Segment]]]:
        kwargs: dict[str, Any] = {} if decoding.temperature is None else {"temperature": decoding.temperature}
        segments, info = self._model.transcribe(
            samples,
            language=decoding.language,
            task=decoding.task,
            beam_size=self._settings.beam_size,
            initial_prompt=decoding.prompt,
            word_timestamps=decoding.words,
            vad_filter=False,
            **kwargs,
        )
        temperature = decoding.temperature or 0.0
        return str(info.language), ([_segment(found, temperature)] for found in segments)


def _seek(start_seconds: float) -> int:
    return int(int(start_seconds * SAMPLE_RATE) / SAMPLE_RATE * 100)


def _segment(found: Any, temperature: float) -> Segment:
    words = tuple(Word(str(w.word), float(w.start), float(w.end)) for w in (found.words or ()))
    return Segment(
        start=float(found.start),
        end=float(found.end),
        text=str(found.text),
        tokens=tuple(int(t) for t in found.tokens),
        temperature=float(found.temperature if found.temperature is not None else temperature),
        avg_logprob=float(found.avg_logprob),
        compression_ratio=float(found.compression_ratio),
        no_speech_prob=float(found.no_speech_prob),
        words=words,
    )


def _windows_ahead(samples: npt.NDArray[np.float32]) -> Iterator[Window]:
    """Windows as soon as voice detection has found them: it runs a block ahead, in a helper thread, while
    the caller decodes (it is single-threaded and takes about 8% of the time the decoding does)."""
    helper = ThreadPoolExecutor(1, thread_name_prefix="speech-vad")
    try:
        blocks = [helper.submit(block_spans, samples, offset) for offset in range(0, len(samples), VAD_BLOCK)]
        planner = WindowPlanner()
        for block in blocks:
            yield from planner.add(block.result())
        yield from planner.finish()
    finally:
        helper.shutdown(wait=False, cancel_futures=True)


def _token_budget(windows: Sequence[Window]) -> int:
    longest = max((w.end - w.start) / SAMPLE_RATE for w in windows)
    return min(int(MAX_TOKENS_PER_SECOND * longest) + 16, 224)


def _rate(window: Window, segments: list[Segment]) -> float:
    return _token_count(segments) / max(window.speech_seconds, 0.1)


def _looping(segments: list[Segment]) -> bool:
    # Whisper's own test for a decoder stuck repeating itself (openai-whisper's compression_ratio_threshold).
    return any(segment.compression_ratio > _MAX_COMPRESSION_RATIO for segment in segments)


def _token_count(segments: list[Segment]) -> int:
    return sum(len(segment.tokens) for segment in segments)
