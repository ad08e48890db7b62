"""Speech out while the reply is still being written: each finished sentence is spoken at once, in order.

    speaker = SentenceSpeaker(models.speak, key, emit, "wav")
    await speaker.feed("The kitchen light is on. It is ")    # "The kitchen light is on." is being spoken now
    await speaker.finish()                                   # the rest; every `audio` event sent, in order

With a streamed turn, the first sentence's audio can be on its way while the model writes the second: the time
to the first byte of reply audio is one sentence's synthesis after that sentence, not the whole reply's after the
whole reply. Each `audio` event is a complete file of one sentence (`index`, `text`, `format`, `data`), played
one after the other. A sentence ends at `.`, `!` or `?` (and closing quotes or brackets) followed by white space,
or at a line break; "3.5" and "e.g." in the middle of a word are not ends.

A turn without a stream is spoken the same way, its sentences collected (`SpokenParts`) and joined into one file
(`join_audio`) when the format can be joined: the synthesis overlaps the model's writing there too.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import wave
from collections.abc import Awaitable, Callable

from .events import Emit, TurnEvent

__all__ = ["JOINABLE", "SentenceSpeaker", "SpokenParts", "join_audio"]

_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n+")

Speak = Callable[[str | None, str], Awaitable[bytes]]


class SentenceSpeaker:
    def __init__(self, speak: Speak, key: str | None, emit: Emit, audio_format: str) -> None:
        self._speak = speak
        self._key = key
        self._emit = emit
        self._format = audio_format
        self._buffer = ""
        self._index = 0
        self._last: asyncio.Task[None] | None = None

    async def feed(self, text: str) -> None:
        self._buffer += text
        while (end := _END.search(self._buffer)) is not None:
            sentence, self._buffer = self._buffer[: end.end()], self._buffer[end.end() :]
            self._start(sentence)

    async def finish(self) -> None:
        """Speak what is left and wait until every sentence's audio has been sent."""
        self._start(self._buffer)
        self._buffer = ""
        if self._last is not None:
            await self._last

    def cancel(self) -> None:
        """The turn failed: stop speaking (the chain cancels each sentence it waits for)."""
        last = self._last
        if last is None:
            return
        if last.done():
            if not last.cancelled():
                last.exception()  # retrieved: the turn's own error is the one reported
        else:
            last.cancel()

    def _start(self, sentence: str) -> None:
        sentence = sentence.strip()
        if not any(character.isalnum() for character in sentence):
            return
        previous, index = self._last, self._index
        self._index += 1
        self._last = asyncio.create_task(self._say(sentence, index, previous))

    async def _say(self, sentence: str, index: int, previous: asyncio.Task[None] | None) -> None:
        audio = asyncio.ensure_future(self._speak(self._key, sentence))  # starts now, alongside earlier ones
        try:
            if previous is not None:
                await previous  # sent in order; an earlier failure ends this one too
            data = base64.b64encode(await audio).decode()
        finally:
            audio.cancel()  # a no-op once it is done
        await self._emit(TurnEvent("audio", {"index": index, "text": sentence, "format": self._format, "data": data}))


class SpokenParts:
    """An `Emit` for a speaker whose sentences are wanted as one file: it keeps each sentence's audio, in order."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def __call__(self, event: TurnEvent) -> None:
        if event.kind == "audio":
            self.parts.append(base64.b64decode(event.data["data"]))


def _join_wav(parts: list[bytes]) -> bytes:
    """One WAV of several with the same format: their samples one after the other."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        for number, part in enumerate(parts):
            with wave.open(io.BytesIO(part), "rb") as reader:
                if number == 0:
                    writer.setparams(reader.getparams())
                elif reader.getparams()[:3] != writer.getparams()[:3]:
                    raise ValueError("the sentences' WAV formats differ")
                writer.writeframes(reader.readframes(reader.getnframes()))
    return out.getvalue()


def _concatenate(parts: list[bytes]) -> bytes:
    return b"".join(parts)


# Formats whose sentence files make one file: WAV re-framed; raw PCM, MP3 frames and AAC's ADTS frames follow one
# another as they are. Ogg Opus (chained streams many players stop after) and FLAC (one header) are spoken whole.
JOINABLE: dict[str, Callable[[list[bytes]], bytes]] = {
    "wav": _join_wav,
    "pcm": _concatenate,
    "mp3": _concatenate,
    "aac": _concatenate,
}


def join_audio(audio_format: str, parts: list[bytes]) -> bytes:
    """`join_audio("wav", [first, second])` -> one file that plays both; the format must be in `JOINABLE`."""
    return JOINABLE[audio_format](parts)
