"""`audio/transcriptions` and `audio/translations`: a deterministic transcript of the uploaded file.

    reply = create_transcription(call)   # {"text": "This is an emulated transcription of clip.wav."}

The transcript names the file; its duration comes from the WAV header when the upload is a WAV file, else
from its size at 16 kB per second (128 kbit/s). `response_format` json (default), text, srt, vtt or
verbose_json; verbose_json carries one segment spanning the whole clip (when `timestamp_granularities[]`
is absent or includes "segment") and evenly spaced words (when it includes "word").

The newer models (`gpt-4o-transcribe`, `gpt-4o-mini-transcribe`: a deployment whose model names "transcribe")
take json or text only, answer with token `usage`, add `logprobs` with `include[]=logprobs`, accept
`chunking_strategy` ("auto" or `chunking_strategy[type]=server_vad`), and with `stream=true` answer Server-Sent
Events: `transcript.text.delta` per word, then `transcript.text.done` with the text and usage (whisper models
ignore `stream`, as OpenAI's do).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from ..captions import captions
from .call import Call, FormPayload, Reply
from .errors import InvalidRequest
from .tokens import count_tokens

__all__ = ["create_transcription", "create_translation"]

_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
_GRANULARITIES = ("word", "segment")
_BYTES_PER_SECOND_GUESS = 16_000
_NEW_FORMATS = ("json", "text")
_CHUNKING_FIELDS = ("prefix_padding_ms", "silence_duration_ms", "threshold")


def create_transcription(call: Call) -> Reply:
    return _transcribe(call, task="transcribe")


def create_translation(call: Call) -> Reply:
    return _transcribe(call, task="translate")


def _transcribe(call: Call, *, task: str) -> Reply:
    form = call.form or FormPayload({})
    upload = form.file
    if upload is None:
        raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    response_format = form.get("response_format") or "json"
    if task == "transcribe" and "transcribe" in call.deployment.model:
        return _transcribe_new(call, form, upload.filename or "audio", response_format)
    if response_format not in _FORMATS:
        raise InvalidRequest(
            f"Invalid value: '{response_format}'. Supported values are: {', '.join(_FORMATS)}.",
            param="response_format",
            code="invalid_value",
        )
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
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

    name = upload.filename or "audio"
    if task == "translate":
        text = f"This is an emulated English translation of {name}."
        language = "english"
    else:
        text = f"This is an emulated transcription of {name}."
        language = form.get("language") or "english"
    duration = round(_duration(upload.head, upload.size), 2)
    tokens = count_tokens(text)

    if response_format == "text":
        return Reply.text(text, tokens=tokens)
    if response_format in ("srt", "vtt"):
        return Reply.text(_captions(text, duration, vtt=response_format == "vtt"), tokens=tokens)
    if response_format == "json":
        return Reply.json({"text": text}, tokens=tokens)
    body: dict[str, Any] = {"task": task, "language": language, "duration": duration, "text": text}
    if not granularities or "segment" in granularities:
        body["segments"] = [_segment(text, duration)]
    if "word" in granularities:
        body["words"] = _words(text, duration)
    return Reply.json(body, tokens=tokens)


def _transcribe_new(call: Call, form: FormPayload, name: str, response_format: str) -> Reply:
    """gpt-4o-transcribe and gpt-4o-mini-transcribe: token usage, logprobs, chunking, streamed events."""
    if response_format not in _NEW_FORMATS:
        raise InvalidRequest(
            f"response_format '{response_format}' is not compatible with model '{call.deployment.model}'. "
            "Use 'json' or 'text'.",
            param="response_format",
            code="unsupported_value",
        )
    include = form.getlist("include[]") or form.getlist("include")
    if any(value != "logprobs" for value in include):
        raise InvalidRequest("Invalid 'include': the only value supported is 'logprobs'.", param="include")
    if include and response_format != "json":
        raise InvalidRequest("include[]=logprobs requires response_format json.", param="include")
    _check_chunking(form)
    text = f"This is an emulated transcription of {name}."
    words = text.split(" ")
    audio_tokens = max(1, round(_duration(form.file.head, form.file.size) * 10)) if form.file else 1
    output_tokens = count_tokens(text)
    usage = {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
        "output_tokens": output_tokens,
        "total_tokens": audio_tokens + output_tokens,
    }
    pieces = [word if i == 0 else " " + word for i, word in enumerate(words)]
    logprobs = [{"token": piece, "logprob": -0.01, "bytes": list(piece.encode())} for piece in pieces]
    stream = (form.get("stream") or "").strip().lower() == "true"
    if stream:
        events: list[dict[str, Any]] = []
        for piece, logprob in zip(pieces, logprobs, strict=True):
            delta: dict[str, Any] = {"type": "transcript.text.delta", "delta": piece}
            if include:
                delta["logprobs"] = [logprob]
            events.append(delta)
        done: dict[str, Any] = {"type": "transcript.text.done", "text": text, "usage": usage}
        if include:
            done["logprobs"] = logprobs
        events.append(done)
        chunks = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
        return Reply(chunks, b"text/event-stream; charset=utf-8", tokens=output_tokens, streamed=True)
    if response_format == "text":
        return Reply.text(text, tokens=output_tokens)
    body: dict[str, Any] = {"text": text, "usage": usage}
    if include:
        body["logprobs"] = logprobs
    return Reply.json(body, tokens=output_tokens)


def _check_chunking(form: FormPayload) -> None:
    """`chunking_strategy`: "auto", or a server_vad object (sent as `chunking_strategy[type]` and friends)."""
    plain = form.get("chunking_strategy")
    kind = form.get("chunking_strategy[type]")
    if plain is not None:
        if plain != "auto":
            raise InvalidRequest(
                "Invalid 'chunking_strategy': expected 'auto' or an object of type server_vad.",
                param="chunking_strategy",
            )
        return
    if kind is None:
        return
    if kind != "server_vad":
        raise InvalidRequest("Invalid 'chunking_strategy.type': expected 'server_vad'.", param="chunking_strategy")
    for field in _CHUNKING_FIELDS:
        value = form.get(f"chunking_strategy[{field}]")
        if value is None:
            continue
        try:
            float(value)
        except ValueError:
            raise InvalidRequest(
                f"Invalid 'chunking_strategy.{field}': expected a number.", param="chunking_strategy"
            ) from None


def _duration(head: bytes, size: int) -> float:
    """Seconds of audio: exact for a plain PCM WAV header, estimated from the size otherwise."""
    if len(head) >= 44 and head[:4] == b"RIFF" and head[8:12] == b"WAVE" and head[36:40] == b"data":
        channels, rate, byte_rate = struct.unpack("<HII", head[22:32])
        data_bytes = struct.unpack("<I", head[40:44])[0]
        if byte_rate and channels and rate:
            return float(min(data_bytes, max(0, size - 44)) / byte_rate)
    return max(size, 1) / _BYTES_PER_SECOND_GUESS


def _segment(text: str, duration: float) -> dict[str, Any]:
    return {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": duration,
        "text": text,
        "tokens": list(range(50364, 50364 + count_tokens(text))),
        "temperature": 0.0,
        "avg_logprob": -0.1,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0,
    }


def _words(text: str, duration: float) -> list[dict[str, Any]]:
    words = [word.strip(".,") for word in text.split()]
    step = duration / max(len(words), 1)
    return [
        {"word": word, "start": round(i * step, 2), "end": round((i + 1) * step, 2)} for i, word in enumerate(words)
    ]


def _captions(text: str, duration: float, *, vtt: bool) -> str:
    return captions([(0.0, duration, text)], vtt=vtt) + "\n"
