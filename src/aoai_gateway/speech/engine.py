"""A faster-whisper (CTranslate2) model, loaded once, and the pipeline that turns samples into segments.

model = SpeechModel("/path/to/model", settings.speech, replicas=2, cpu_threads=1)
language, batches = model.transcribe(samples, Decoding(task="transcribe"))
for segments in batches: ...            # lists of `Segment`, in time order, as each batch finishes

With `speech.vad` on (the default), the recording is cut into windows of up to 30 s at pauses found by voice
detection (windows.py; it runs a block ahead in a helper thread) and the windows are decoded
`speech.batch_size` at a time, each batch on one of the model's `replicas` (CTranslate2 workers of
`cpu_threads` threads sharing one copy of the weights), up to `replicas` batches of a recording at once:
on two cores about 4 times faster than faster-whisper's plain sequential `transcribe()` on a ten-minute call,
at a lower word error rate (bench/README.md). Whisper sometimes skips part of a window: a window that comes
back with far fewer tokens than its speech should give, or looping, is cut in two at its middle pause and
decoded again, and the halves replace it when they say more without looping; speech that the window's
aligned words leave uncovered (gaps.py) is decoded again on its own and its words put in place. With
`speech.vad` off, faster-whisper's own sequential decoding runs (temperature fallback, previous text as
context): slower, kept as a reference.

`transcribe` may run in several worker threads at once: CTranslate2 releases the GIL, and the batches of
every transcription share the replicas.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel

from ..config.speech import SpeechSettings
from .gaps import gap_clip, splice, uncovered
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
# Whisper's own test for a stretch with no speech (openai-whisper's no_speech_threshold, logprob_threshold).
_NO_SPEECH_PROBABILITY, _MIN_AVG_LOGPROB = 0.6, -1.0
# Captions (srt, vtt, verbose_json segments) end at a sentence or at a pause this long between two words.
_CAPTION_PAUSE_SECONDS = 1.0
_SENTENCE_END = re.compile("[.?!\u2026\u3002\uff1f\uff01]['\"\u201d\u2019)]*$")  # CJK full stops, closing quotes
# Windows average about 25 s: a recording's expected number of windows, to share a short one among replicas.
_WINDOW_GUESS_SECONDS = 25.0


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

    def __init__(self, path: str, settings: SpeechSettings, replicas: int, cpu_threads: int) -> None:
        self.path = path
        self._settings = settings
        self._replicas = replicas
        self._model = WhisperModel(
            path,
            device="cpu",
            compute_type=settings.compute_type,
            cpu_threads=cpu_threads,
            num_workers=replicas,
            local_files_only=True,
        )
        # One thread per replica runs batches (decoding, then any decoding again); CTranslate2 gives each call
        # to a free replica.
        self._batch_runner = ThreadPoolExecutor(replicas, thread_name_prefix="speech-batch")
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

    def close(self) -> None:
        """Stop the batch threads (after the transcriptions using them ended)."""
        self._batch_runner.shutdown(wait=False, cancel_futures=True)

    def _warm_up(self) -> None:
        """Run voice detection and, on every replica at once, a decode with word alignment on a second of silence,
        so the first request does not pay for onnxruntime's session and CTranslate2's first allocations, and a
        broken model fails at start-up."""
        silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
        speech_spans(silence)
        window = Window(0, SAMPLE_RATE, ((0, SAMPLE_RATE),))

        def decode(_: int) -> list[list[Segment]]:
            return self._decode(silence, [window], "en", Decoding(words=True))

        list(self._batch_runner.map(decode, range(self._replicas)))

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
        """Batches handed to the replicas as the windows come, results yielded in order."""
        running: deque[Future[list[Segment]]] = deque()
        batch: list[Window] = []
        usual = self._batch_size(len(samples))
        size = first_batch or usual
        try:
            for window in itertools.chain(windows, [None]):
                if window is not None:
                    batch.append(window)
                if batch and (len(batch) >= size or window is None):
                    if cancelled():
                        raise Cancelled
                    running.append(self._batch_runner.submit(self._decode_batch, samples, batch, language, decoding))
                    batch, size = [], usual
                while running and (len(running) >= self._replicas or running[0].done()):
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()

    def _batch_size(self, samples: int) -> int:
        """`speech.batch_size`, or less for a short recording, so that its windows are shared by the replicas."""
        expected = math.ceil(samples / (_WINDOW_GUESS_SECONDS * SAMPLE_RATE))
        return max(1, min(self._settings.batch_size, math.ceil(expected / self._replicas)))

    def _decode_batch(
        self, samples: npt.NDArray[np.float32], batch: list[Window], language: str, decoding: Decoding
    ) -> list[Segment]:
        """The segments of a batch of windows, skipped speech decoded again (words aligned for that)."""
        aligned = replace(decoding, words=True)
        decoded = self._decode(samples, batch, language, aligned)
        decoded = self._recover(samples, batch, decoded, language, aligned)
        decoded = self._fill(samples, batch, decoded, language, aligned)
        segments = [segment for window in decoded for segment in window]
        if decoding.captions:
            return [caption for segment in segments for caption in self._captions(segment)]
        return segments if decoding.words else [replace(segment, words=()) for segment in segments]

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

    def _fill(
        self,
        samples: npt.NDArray[np.float32],
        batch: Sequence[Window],
        decoded: list[list[Segment]],
        language: str,
        decoding: Decoding,
    ) -> list[list[Segment]]:
        """Decode again, in one batch, the speech each window's words leave uncovered; put the words found there
        in place (gaps.py)."""
        gaps = [(index, gap) for index, window in enumerate(batch) for gap in uncovered(window, _words(decoded[index]))]
        if not gaps:
            return decoded
        again = self._decode_clips(samples, [gap_clip(gap, len(samples)) for _, gap in gaps], language, decoding)
        for (index, gap), found in zip(gaps, again, strict=True):
            words = None if _looping(found) or _silent(found) else splice(_words(decoded[index]), gap, _words(found))
            if words:
                decoded[index] = [self._joined(decoded[index], words)]
        return decoded

    def _decode_clips(
        self, samples: npt.NDArray[np.float32], clips: list[Window], language: str, decoding: Decoding
    ) -> list[list[Segment]]:
        """`_decode` for clips that may overlap: decoded from a copy of them laid end to end (faster-whisper
        wants clips that add up to no more than the audio), times moved back to the recording's."""
        packed, at = [], 0
        for clip in clips:
            packed.append(Window(at, at + clip.end - clip.start, ((at, at + clip.end - clip.start),)))
            at += clip.end - clip.start
        audio = np.concatenate([samples[clip.start : clip.end] for clip in clips])
        decoded = self._decode(audio, packed, language, decoding)
        return [
            [_shifted(segment, (clip.start - local.start) / SAMPLE_RATE) for segment in segments]
            for clip, local, segments in zip(clips, packed, decoded, strict=True)
        ]

    def _joined(self, segments: list[Segment], words: list[Word]) -> Segment:
        """One segment of `words`, scored as the window's first segment."""
        first, text = segments[0], "".join(word.word for word in words)
        return Segment(
            start=min(first.start, words[0].start),
            end=max(segments[-1].end, words[-1].end),
            text=text,
            tokens=self._tokens(text),
            temperature=first.temperature,
            avg_logprob=first.avg_logprob,
            compression_ratio=first.compression_ratio,
            no_speech_prob=first.no_speech_prob,
            words=tuple(words),
        )

    def _tokens(self, text: str) -> tuple[int, ...]:
        return tuple(self._model.hf_tokenizer.encode(text, add_special_tokens=False).ids)

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
        return [by_seek.get(_seek(clip["start"]), []) for clip in clips]

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
            out.append(
                Segment(
                    start=words[0].start,
                    end=words[-1].end,
                    text=text,
                    tokens=self._tokens(text),
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
    words = tuple(
        Word(str(w.word), float(w.start), float(w.end), float(getattr(w, "probability", 1.0)))
        for w in (found.words or ())
    )
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


def _shifted(segment: Segment, seconds: float) -> Segment:
    words = tuple(replace(word, start=word.start + seconds, end=word.end + seconds) for word in segment.words)
    return replace(segment, start=segment.start + seconds, end=segment.end + seconds, words=words)


def _words(segments: list[Segment]) -> list[Word]:
    return [word for segment in segments for word in segment.words]


def _silent(segments: list[Segment]) -> bool:
    # What a gap decoded again says is kept only if Whisper itself would not call it silence (noise that voice
    # detection took for speech comes back as one of its stock phrases).
    return all(s.no_speech_prob > _NO_SPEECH_PROBABILITY and s.avg_logprob < _MIN_AVG_LOGPROB for s in segments)


def _token_count(segments: list[Segment]) -> int:
    return sum(len(segment.tokens) for segment in segments)
