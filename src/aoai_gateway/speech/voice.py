"""A local voice for `audio/speech` (`provider: local`, `engine: espeak-ng`): eSpeak NG from the PyPI package that
ships its library and data (`espeakng-loader`, the voice extra), so spoken replies need no network and no system
package.

    voice = LocalVoice()                                         # loads libespeak-ng once
    request = VoiceRequest.from_json(body)                       # input, voice, response_format, speed: checked
    content_type, audio, seconds = await voice.speak(request)    # wav, pcm, mp3, opus, aac or flac bytes

eSpeak NG keeps global state and is not thread-safe: one synthesis runs at a time, in a worker thread (short
replies take milliseconds). OpenAI's voice names (alloy, nova, ...) speak with the default voice; any eSpeak NG
voice name (`en-US`, `de`, `fr`) picks that one. Formats other than wav and pcm are encoded with PyAV.
"""

from __future__ import annotations

import array
import asyncio
import ctypes
import io
import re
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest, UpstreamError
from ..wav import wav_bytes

__all__ = ["DEFAULT_VOICE", "LocalVoice", "VoiceRequest"]

DEFAULT_VOICE = "en"
MAX_INPUT = 4096  # characters, as OpenAI's speech endpoint
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"}
)
_VOICE_NAME = re.compile(r"^[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{1,8}){0,3}$")
_WORDS_PER_MINUTE = 175
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come to the callback, nothing is played
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_RATE_PARAMETER = 1  # espeakRATE
# format -> (content type, PyAV container, codec, codec sample rate or None for the voice's own)
_ENCODED: dict[str, tuple[str, str, str, int | None]] = {
    "mp3": ("audio/mpeg", "mp3", "libmp3lame", None),
    "opus": ("audio/ogg", "ogg", "libopus", 48_000),
    "aac": ("audio/aac", "adts", "aac", None),
    "flac": ("audio/flac", "flac", "flac", None),
}
FORMATS = ("wav", "pcm", *_ENCODED)


@dataclass(frozen=True, slots=True)
class VoiceRequest:
    text: str
    voice: str
    response_format: str
    speed: float

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> VoiceRequest:
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("'input' must be a non-empty string.", param="input")
        if len(text) > MAX_INPUT:
            raise InvalidRequest(f"'input' is longer than {MAX_INPUT} characters.", param="input")
        voice = body.get("voice", "alloy")
        if not isinstance(voice, str) or not (voice in OPENAI_VOICES or _VOICE_NAME.match(voice)):
            raise InvalidRequest(
                "'voice' must be an OpenAI voice name (alloy, nova, ...) or an eSpeak NG voice such as en-US or de.",
                param="voice",
            )
        response_format = body.get("response_format", "mp3")
        if response_format not in FORMATS:
            raise InvalidRequest(f"'response_format' must be one of {', '.join(FORMATS)}.", param="response_format")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, int | float) or isinstance(speed, bool) or not 0.25 <= speed <= 4.0:
            raise InvalidRequest("'speed' must be a number from 0.25 to 4.0.", param="speed")
        # Control characters would reach the synthesiser's SSML-free text path as noise; spaces say the same.
        clean = "".join(c if c >= " " or c in "\t\n" else " " for c in text)
        return cls(clean, DEFAULT_VOICE if voice in OPENAI_VOICES else voice, str(response_format), float(speed))


class LocalVoice:
    def __init__(self) -> None:
        import espeakng_loader  # the voice extra

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.sample_rate = int(
            self._lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        )
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG could not start (its data directory is missing?)")
        self._samples = array.array("h")
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept: the library holds only a raw pointer to it
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if wav and count > 0:
            self._samples.frombytes(ctypes.string_at(wav, count * 2))
        return 0  # go on

    async def speak(self, request: VoiceRequest) -> tuple[str, bytes, float]:
        """(content type, audio, seconds of speech)."""
        pcm = await asyncio.to_thread(self._synthesize, request)
        seconds = len(pcm) / 2 / self.sample_rate
        if request.response_format == "pcm":
            return "audio/pcm", pcm, seconds
        if request.response_format == "wav":
            return "audio/wav", wav_bytes(pcm, self.sample_rate), seconds
        content_type, audio = await asyncio.to_thread(_encode, pcm, self.sample_rate, request.response_format)
        return content_type, audio, seconds

    def _synthesize(self, request: VoiceRequest) -> bytes:
        with self._lock:
            if self._lib.espeak_SetVoiceByName(request.voice.encode()) != 0:
                raise InvalidRequest(f"eSpeak NG has no voice {request.voice!r}.", param="voice")
            self._lib.espeak_SetParameter(_RATE_PARAMETER, round(_WORDS_PER_MINUTE * request.speed), 0)
            self._samples = array.array("h")
            text = request.text.encode("utf-8")
            if self._lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
                raise UpstreamError("The local voice failed to synthesise the text.")
            return self._samples.tobytes()

    def close(self) -> None:
        self._lib.espeak_Terminate()


def _encode(pcm: bytes, rate: int, response_format: str) -> tuple[str, bytes]:
    import av
    import numpy as np

    content_type, container_format, codec, codec_rate = _ENCODED[response_format]
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=codec_rate or rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        target = stream.codec_context
        resampler = av.AudioResampler(format=target.format.name, layout="mono", rate=target.sample_rate)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                container.mux(packet)
    return content_type, out.getvalue()
