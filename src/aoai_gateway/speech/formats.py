"""A transcript in each of OpenAI's response formats, and as the Server-Sent Events of `stream=true`.

content_type, body = render(transcript, request)       # json, text, srt, vtt or verbose_json
delta_event(" Hello there.")                            # b'data: {"type":"transcript.text.delta",...}\n\n'
done_event(transcript)                                  # the closing `transcript.text.done` event

Shapes follow OpenAI's whisper-1: `usage` is `{"type": "duration", "seconds": N}` with the seconds rounded up
(transcriptions only: OpenAI's translation objects carry none), verbose_json's `language` is the full lower-case
name ("english"; always "english" for translations), `duration` is in seconds, segments carry Whisper's fields
and words their start and end.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from ..captions import captions
from .languages import LANGUAGES
from .request import SpeechRequest
from .transcript import Segment, Transcript

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
EVENT_STREAM = b"text/event-stream"


def usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(transcript.duration)}


def render(transcript: Transcript, request: SpeechRequest) -> tuple[bytes, bytes]:
    """(content type, body) of the whole answer."""
    form = request.response_format
    if form == "text":
        return TEXT, (transcript.text + "\n").encode()
    if form == "srt":
        return TEXT, _captions(transcript.segments, vtt=False).encode()
    if form == "vtt":
        return b"text/vtt; charset=utf-8", _captions(transcript.segments, vtt=True).encode()
    body: dict[str, Any] = {"text": transcript.text}
    if form == "verbose_json":
        body = {
            "task": transcript.task,
            "language": "english" if transcript.task == "translate" else LANGUAGES.get(transcript.language, "english"),
            "duration": round(transcript.duration, 2),
            "text": transcript.text,
        }
        if request.segments:
            body["segments"] = [_segment(i, segment) for i, segment in enumerate(transcript.segments)]
        if request.words:
            # `probability` (Whisper's confidence, 0..1) is ours: OpenAI's words carry none; clients ignore it.
            body["words"] = [
                {
                    "word": word.word.strip(),
                    "start": round(word.start, 2),
                    "end": round(word.end, 2),
                    "probability": round(word.probability, 3),
                }
                for segment in transcript.segments
                for word in segment.words
            ]
    if transcript.task == "transcribe":
        body["usage"] = usage(transcript)
    return JSON, orjson.dumps(body)


def delta_event(text: str) -> bytes:
    return _event({"type": "transcript.text.delta", "delta": text})


def done_event(transcript: Transcript) -> bytes:
    return _event({"type": "transcript.text.done", "text": transcript.text, "usage": usage(transcript)})


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _segment(index: int, segment: Segment) -> dict[str, Any]:
    return {
        "id": index,
        "seek": int(segment.start * 100),  # Whisper's 10 ms frames
        "start": round(segment.start, 2),
        "end": round(segment.end, 2),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def _captions(segments: list[Segment], *, vtt: bool) -> str:
    return captions(((s.start, s.end, s.text) for s in segments), vtt=vtt)
