"""`audio/speech`: silent but valid audio, streamed in pieces, lasting about as long as the text takes to say.

    reply = create_speech(call)   # Reply(chunks=[b"RIFF...", ...], media_type=b"audio/wav", streamed=True)

Duration: 0.25 s per word divided by `speed`, between 0.5 s and 10 s (the cap keeps load tests cheap).
`response_format`: mp3 (default; MPEG-1 Layer III frames of silence, audio/mpeg), wav (24 kHz 16-bit mono
PCM in a RIFF header, audio/wav) or pcm (the same samples raw, audio/pcm). opus, aac and flac are
refused with a 400 naming what the emulator can produce: faking their containers is not worth it.

`stream_format: sse` (not on tts-1 models, as on OpenAI) answers Server-Sent Events instead of bytes: one
`speech.audio.delta` per piece with its audio in base64, then `speech.audio.done` with token usage.
`instructions` (a voice direction for gpt-4o-mini-tts) is accepted up to 4096 characters and refused on tts-1.
"""

from __future__ import annotations

import base64
import struct

import orjson

from .call import Call, Reply
from .errors import InvalidRequest
from .tokens import count_tokens
from .validation import optional_choice, required_str

__all__ = ["create_speech", "wav_bytes"]

_SAMPLE_RATE = 24_000
_PIECE = 16 * 1024
_MAX_INPUT = 4096
_MEDIA_TYPES = {"mp3": b"audio/mpeg", "wav": b"audio/wav", "pcm": b"audio/pcm"}
# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono, no CRC; zero side info and main data decode as silence.
_MP3_HEADER = b"\xff\xfb\x90\xc0"
_MP3_FRAME = _MP3_HEADER + bytes(417 - len(_MP3_HEADER))
_MP3_FRAME_SECONDS = 1152 / 44_100


def create_speech(call: Call) -> Reply:
    body = call.json
    text = required_str(body, "input")
    if not text or len(text) > _MAX_INPUT:
        raise InvalidRequest(
            f"Invalid 'input': expected between 1 and {_MAX_INPUT} characters.",
            param="input",
            code="invalid_value",
        )
    required_str(body, "voice")
    response_format = optional_choice(body, "response_format", ("mp3", "opus", "aac", "flac", "wav", "pcm"), "mp3")
    if response_format not in _MEDIA_TYPES:
        raise InvalidRequest(
            f"The Azure OpenAI emulator cannot produce '{response_format}' audio; ask for mp3, wav or pcm.",
            param="response_format",
            code="invalid_value",
        )
    tts_1 = call.deployment.model.startswith("tts-1")
    stream_format = optional_choice(body, "stream_format", ("audio", "sse"), "audio")
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str) or len(instructions) > _MAX_INPUT:
            raise InvalidRequest(
                f"Invalid 'instructions': expected at most {_MAX_INPUT} characters.", param="instructions"
            )
        if tts_1:
            raise InvalidRequest("instructions are not supported for tts-1 models.", param="instructions")
    if stream_format == "sse" and tts_1:
        raise InvalidRequest("stream_format 'sse' is not supported for tts-1 models.", param="stream_format")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
        raise InvalidRequest("Invalid 'speed': expected a number between 0.25 and 4.0.", param="speed")
    seconds = min(10.0, max(0.5, 0.25 * len(text.split()) / speed))
    if response_format == "mp3":
        audio = _MP3_FRAME * max(1, round(seconds / _MP3_FRAME_SECONDS))
    elif response_format == "wav":
        audio = wav_bytes(seconds)
    else:
        audio = bytes(2 * round(seconds * _SAMPLE_RATE))
    chunks = [audio[start : start + _PIECE] for start in range(0, len(audio), _PIECE)]
    tokens = count_tokens(text) + count_tokens(instructions or "")
    if stream_format == "sse":
        audio_tokens = len(chunks) * 10
        events: list[dict[str, object]] = [
            {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()} for chunk in chunks
        ]
        usage = {"input_tokens": tokens, "output_tokens": audio_tokens, "total_tokens": tokens + audio_tokens}
        events.append({"type": "speech.audio.done", "usage": usage})
        sse = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
        return Reply(sse, b"text/event-stream; charset=utf-8", tokens=tokens, streamed=True)
    return Reply(chunks, _MEDIA_TYPES[response_format], tokens=tokens, streamed=True)


def wav_bytes(seconds: float) -> bytes:
    """A 24 kHz 16-bit mono WAV file of silence."""
    data = bytes(2 * round(seconds * _SAMPLE_RATE))
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, _SAMPLE_RATE, 2 * _SAMPLE_RATE, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data
