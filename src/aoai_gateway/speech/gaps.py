"""Speech a window's words do not cover: what Whisper skipped, found by aligning its words to the audio.

gaps = uncovered(window, words)               # [(start, end), ...] in seconds: speech no word was aligned to
clip = gap_clip(gap, len(samples))            # the audio to decode again for that gap
words = splice(words, gap, found)             # the window's words with those decoded in the gap, or None

Whisper sometimes skips part of a window: the start (it begins at the second speaker), a turn in the middle
or the end (it stops after a turn). Its words, aligned to the audio (the same alignment as word timestamps),
then leave speech that voice detection found uncovered: before the first word, after the last, or under a
word stretched over seconds (the alignment has to put the skipped frames somewhere). Each such gap is decoded
again on its own, from where it starts (Whisper seldom skips the start of what it is given); a short gap
with the speech after it, so Whisper has enough to go on, and only the words that fall inside the gap are
kept. On the benchmark's calls this recovers most of what windows lost in the middle or at their start, which
decoding a window again in halves (engine.py) does not catch.
"""

from __future__ import annotations

from .transcript import Word
from .windows import SAMPLE_RATE, Window

Gap = tuple[float, float]  # seconds

# Words last well under a second; an aligned "word" longer than this covers frames Whisper skipped.
STRETCHED_SECONDS = 1.2
# How far an aligned word's edges may be off (the alignment has 20 ms frames, smoothed).
_TOLERANCE = 0.3
# Uncovered speech shorter than this is the alignment's slack, not a skipped phrase.
MIN_GAP_SECONDS = 1.0
# Uncovered pieces closer than this are one gap, as are pieces with no word between them (a skipped turn
# and the pauses in it).
_JOIN = 0.5
# A gap shorter than `_SHORT` is decoded with the `_CONTEXT` seconds after it (alone, a few seconds of speech
# come back as one of Whisper's stock phrases); a longer one on its own, plus `_PAD` either side.
_SHORT, _CONTEXT, _PAD = 5.0, 10.0, 0.3
_LONGEST = 30.0


def uncovered(window: Window, words: list[Word]) -> list[Gap]:
    """Stretches of the window's speech that no aligned word covers, each with `MIN_GAP_SECONDS` of speech."""
    if not words:
        return []  # nothing decoded at all: engine.py decodes such windows again in halves
    spans = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in window.spans]
    covered = sorted((w.start - _TOLERANCE, w.end + _TOLERANCE) for w in words if not _stretched(w))
    pieces: list[Gap] = []
    for start, end in spans:
        at = start
        for first, last in covered:
            if last <= at or first >= end:
                continue
            if first > at:
                pieces.append((at, first))
            at = max(at, last)
            if at >= end:
                break
        if at < end:
            pieces.append((at, end))
    middles = [_middle(word) for word in words]
    gaps: list[Gap] = []
    for start, end in pieces:
        if gaps and (start - gaps[-1][1] < _JOIN or not any(gaps[-1][1] < at < start for at in middles)):
            gaps[-1] = (gaps[-1][0], end)
        else:
            gaps.append((start, end))
    return [gap for gap in gaps if _speech(gap, spans) >= MIN_GAP_SECONDS]


def gap_clip(gap: Gap, samples: int) -> Window:
    """The audio decoded again for `gap`: from just before it, with the speech after it when it is short."""
    start, end = gap
    end += _CONTEXT if end - start < _SHORT else _PAD
    first = max(0, int((start - _PAD) * SAMPLE_RATE))
    last = min(samples, int(end * SAMPLE_RATE), first + int(_LONGEST * SAMPLE_RATE))
    return Window(first, last, ((first, last),))


def splice(words: list[Word], gap: Gap, found: list[Word]) -> list[Word] | None:
    """`words` with the words of `found` that fall inside `gap` put in place (replacing words stretched over
    the gap), in time order; None when `found` has nothing there."""
    start, end = gap
    inside = [word for word in found if start <= _middle(word) <= end]
    if not inside:
        return None
    kept = [word for word in words if not (_stretched(word) and word.start < end and word.end > start)]
    return sorted(kept + inside, key=_middle)


def _stretched(word: Word) -> bool:
    return word.end - word.start > STRETCHED_SECONDS


def _middle(word: Word) -> float:
    return (word.start + word.end) / 2


def _speech(gap: Gap, spans: list[Gap]) -> float:
    return sum(max(0.0, min(gap[1], end) - max(gap[0], start)) for start, end in spans)
