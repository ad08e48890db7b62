"""What a transcription produces, independent of the model behind it and of the response format.

transcript = Transcript(task="transcribe", language="en", duration=12.3, segments=[Segment(...), ...])
transcript.text          # the segments' text joined, as OpenAI's `text`
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .request import Task


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    probability: float = 1.0  # Whisper's confidence in the word, 0..1


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str  # with Whisper's leading space
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(slots=True)
class Transcript:
    task: Task
    language: str  # ISO-639-1 code
    duration: float  # seconds of audio
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()
