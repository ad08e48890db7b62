"""Speech out while the reply is still being written: each finished sentence is spoken at once, in order.

    speaker = SentenceSpeaker(models.speak, key, emit, "wav")
    await speaker.feed("The kitchen light is on. It is ")    # "The kitchen light is on." is being spoken now
    await speaker.finish()                                   # the rest; every `audio` event sent, in order

With a streamed turn, the first sentence's audio can be on its way while the model writes the second: the time
to the first byte of reply audio is one sentence's synthesis after that sentence, not the whole reply's after the
whole reply. Each `audio` event is a complete file of one sentence (`index`, `text`, `format`, `data`), played
one after the other. A sentence ends at `.`, `!` or `?` (and closing quotes or brackets) followed by white space,
or at a line break; "3.5" and "e.g." in the middle of a word are not ends.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable

from .events import Emit, TurnEvent

__all__ = ["SentenceSpeaker"]

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
