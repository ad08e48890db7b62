"""An OpenAI audio request, read from its multipart form and checked the way OpenAI checks it.

request = SpeechRequest.from_form(form, task="transcribe")
request.file            # (start, end) of the audio bytes inside the form's body
request.response_format, request.words, request.stream

Every field of `audio/transcriptions` and `audio/translations`: `file`, `model`, `language`, `prompt`,
`temperature`, `response_format`, `timestamp_granularities[]` (repeated, as the SDKs send it; the unbracketed
name works too) and `stream`. Fields this gateway does not use (`include[]`, `chunking_strategy`) are ignored,
as OpenAI ignores them for whisper-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidRequest
from ..http.multipart import MultipartForm
from .languages import LANGUAGES

Task = Literal["transcribe", "translate"]
ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json")
_GRANULARITIES = ("word", "segment")


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    task: Task
    file: tuple[int, int]
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: ResponseFormat = "json"
    segments: bool = True  # verbose_json lists segments (unless only word timestamps were asked for)
    words: bool = False  # verbose_json lists words with their timestamps
    stream: bool = False

    @classmethod
    def from_form(cls, form: MultipartForm, task: Task) -> SpeechRequest:
        fields: dict[str, list[str]] = {}
        file: tuple[int, int] | None = None
        for part in form.parts:
            if part.name == "file":
                file = file or (part.start, part.end)
            else:
                value = bytes(form.body[part.start : part.end]).decode("utf-8", "replace")
                fields.setdefault(part.name.removesuffix("[]"), []).append(value)
        if file is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")

        def one(name: str) -> str | None:
            values = fields.get(name)
            return values[0].strip() if values and values[0].strip() else None

        response_format = one("response_format") or "json"
        if response_format not in _FORMATS:
            raise InvalidRequest(
                f"Invalid value: '{response_format}'. Supported values are: {', '.join(_FORMATS)}.",
                param="response_format",
                code="invalid_value",
            )
        granularities = [value.strip() for value in fields.get("timestamp_granularities", []) if value.strip()]
        unknown = [value for value in granularities if value not in _GRANULARITIES]
        if unknown:
            raise InvalidRequest(
                f"Invalid value: '{unknown[0]}'. Supported values are: 'word', 'segment'.",
                param="timestamp_granularities",
                code="invalid_value",
            )
        if granularities and response_format != "verbose_json":
            raise InvalidRequest(
                "timestamp_granularities requires response_format to be verbose_json.",
                param="timestamp_granularities",
            )
        stream = (one("stream") or "false").lower() == "true"
        if stream and response_format not in ("json", "text"):
            raise InvalidRequest(
                f"stream=true sends text events; it works with response_format json or text, not {response_format}.",
                param="stream",
            )
        return cls(
            task=task,
            file=file,
            language=_language(one("language")) if task == "transcribe" else None,
            prompt=one("prompt"),
            temperature=_temperature(one("temperature")),
            response_format=response_format,
            segments=not granularities or "segment" in granularities,
            words="word" in granularities,
            stream=stream,
        )


def _language(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.lower()
    if code not in LANGUAGES:
        raise InvalidRequest(
            f"Invalid language '{value}'. Language parameter must be specified in ISO-639-1 format.",
            param="language",
            code="invalid_language_format",
        )
    return code


def _temperature(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        temperature = float(value)
    except ValueError:
        temperature = -1.0
    if not 0.0 <= temperature <= 1.0:
        raise InvalidRequest(
            f"Invalid temperature '{value}': use a number between 0 and 1.", param="temperature", code="invalid_value"
        )
    return temperature
