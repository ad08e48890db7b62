"""A call's transcript as the extraction reads it: segments with their times, joined into one text.

    transcript = Transcript.from_transcription(record.transcription)   # Whisper's segments, or the text alone
    transcript.text                          # the segments' texts joined by spaces: what quotes are found in
    transcript.lines                         # the same, a segment a line: what the model reads
    transcript.segments_between(120, 160)    # (3, 4): the segments that characters 120..160 of the text lie in
    transcript.resolved()                    # spelled-out names and letter/digit runs written as words (spelling.py)
    transcript.respelled(["Callum Fairbairn"])   # (transcript, changes): misheard vocabulary names (respell.py)

A checkpoint from before segments were kept, or a transcription model that gives none, is one segment with no
times: quotes are still checked, only their timestamps are unknown.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from .respell import Respelling, respell
from .spelling import resolve_spelling

__all__ = ["Segment", "Transcript"]


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    start: float | None  # seconds from the recording's start; None when unknown (a scripted transcript)
    end: float | None
    speaker: str | None = None


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    text: str
    offsets: tuple[int, ...]  # where each segment's text starts in `text`

    @classmethod
    def of(cls, segments: list[Segment] | tuple[Segment, ...]) -> Transcript:
        kept = tuple(segment for segment in segments if segment.text.strip())
        offsets, parts, at = [], [], 0
        for segment in kept:
            text = " ".join(segment.text.split())
            offsets.append(at)
            parts.append(text)
            at += len(text) + 1
        return cls(
            tuple(Segment(p, s.start, s.end, s.speaker) for p, s in zip(parts, kept, strict=True)),
            " ".join(parts),
            tuple(offsets),
        )

    @classmethod
    def from_transcription(cls, transcription: dict[str, Any]) -> Transcript:
        found = transcription.get("segments")
        segments = [
            Segment(str(s.get("text") or ""), _seconds(s.get("start")), _seconds(s.get("end")), _speaker(s))
            for s in (found if isinstance(found, list) else [])
            if isinstance(s, dict)
        ]
        if not any(segment.text.strip() for segment in segments):
            segments = [Segment(str(transcription.get("text") or ""), None, None)]
        return cls.of(segments)

    @property
    def lines(self) -> str:
        """The segments one to a line: the turns of the call, as far as the transcription tells them apart."""
        return "\n".join(segment.text for segment in self.segments)

    def resolved(self) -> Transcript:
        """The same segments with spelled-out names and letter/digit sequences written as words."""
        return Transcript.of([Segment(resolve_spelling(s.text), s.start, s.end, s.speaker) for s in self.segments])

    def respelled(self, names: list[str] | tuple[str, ...]) -> tuple[Transcript, list[Respelling]]:
        """The same segments with misheard names of the vocabulary written as it spells them, and the changes."""
        if not names:
            return self, []
        segments, changes = [], []
        for segment in self.segments:
            text, changed = respell(segment.text, names)
            segments.append(Segment(text, segment.start, segment.end, segment.speaker))
            changes += changed
        return (Transcript.of(segments), changes) if changes else (self, [])

    def segments_between(self, start: int, end: int) -> tuple[int, int]:
        """Indexes of the first and last segment that characters [start, end) of `text` fall in."""
        first = max(0, bisect.bisect_right(self.offsets, start) - 1)
        last = max(first, bisect.bisect_right(self.offsets, max(start, end - 1)) - 1)
        return first, last


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _speaker(segment: dict[str, Any]) -> str | None:
    speaker = segment.get("speaker")
    return speaker if isinstance(speaker, str) else None
