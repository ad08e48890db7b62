"""Where a call's transcript comes from: speech recognition, or (to measure extraction alone) the call's script.

    transcriber = SpeechTranscriber(models, settings.calls, Vocabulary.load(settings.calls.vocabulary_path))
    heard = await transcriber.transcribe(path, item)     # Transcription(text, segments, ...)
    ScriptTranscriber()                                  # calls eval --transcripts gold: the scripted turns

The pipeline takes whichever it was built with; both give a `Transcription`, which is checkpointed alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ..config.calls import CallsSettings
from .errors import SourceError
from .models import ModelClient, Transcription
from .sources import SourceItem
from .vocabulary import Vocabulary, prompt_text

__all__ = ["ScriptTranscriber", "SpeechTranscriber", "Transcriber"]


class Transcriber(Protocol):
    async def transcribe(self, path: Path, item: SourceItem) -> Transcription:
        """The transcript of the recording at `path` (the local copy of `item`)."""


class SpeechTranscriber:
    """The configured transcription model, primed with the recording's vocabulary (kept with the transcript, whose
    misheard names respell.py writes as the vocabulary does)."""

    def __init__(self, models: ModelClient, settings: CallsSettings, vocabulary: Vocabulary) -> None:
        self.models = models
        self.settings = settings
        self.vocabulary = vocabulary

    async def transcribe(self, path: Path, item: SourceItem) -> Transcription:
        settings = self.settings
        names = await self.vocabulary.names_for(item)
        heard = await self.models.transcribe(
            path, settings.transcribe_model, settings.language, settings.piece_seconds, prompt=prompt_text(names)
        )
        return replace(heard, vocabulary=tuple(names))


class ScriptTranscriber:
    """A calls-dev script (`{"turns": [{"speaker", "text"}, ...]}`) read as a perfect transcript, one segment a turn.

    The words only, as perfect speech recognition would write them: no speaker labels in the text (speech gives
    none), the speaker kept on each segment, no times (there is no audio)."""

    async def transcribe(self, path: Path, item: SourceItem) -> Transcription:
        turns = await asyncio.to_thread(_turns, path)
        segments = tuple({"start": None, "end": None, "text": text, "speaker": who} for who, text in turns)
        return Transcription(
            text=" ".join(text for _, text in turns),
            language="en",
            duration=None,
            model="script",
            deployment=None,
            seconds=0.0,
            segments=segments,
        )


def _turns(path: Path) -> list[tuple[str | None, str]]:
    try:
        script: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path.name}: not a readable call script: {exc}", retryable=False) from None
    turns = script.get("turns") if isinstance(script, dict) else None
    if not isinstance(turns, list):
        raise SourceError(f"{path.name}: a call script needs a list of turns", retryable=False)
    found = []
    for turn in turns:
        if isinstance(turn, dict) and isinstance(turn.get("text"), str) and turn["text"].strip():
            speaker = turn.get("speaker")
            found.append((speaker if isinstance(speaker, str) else None, " ".join(turn["text"].split())))
    return found
