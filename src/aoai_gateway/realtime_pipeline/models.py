"""A pipeline's three model calls, made in-process through the gateway with the session's key.

    models = PipelineModels(caller, deployment.pipeline)
    text = await models.transcribe(key, pcm)                         # pcm16 24 kHz -> the words heard
    reply = await models.chat(key, request, on_text=send_delta)      # streamed: text as it comes, tool calls
    pcm = await models.speak(key, "It is sunny.", voice="alloy")     # pcm16 24 kHz

Each call is a request to the gateway's own service (`InProcessCaller`): the key's allowlist and caps, routing,
failover, local Whisper and voice, and the usage ledger apply as to any client's request. A model's error answer
is a `ModelAnswerError`; the gateway's own refusals (a key without the model) pass as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..api_call import form_call, json_call
from ..app import Answer, InProcessCaller
from ..assistant.models import ChatReply, ChatStreamReader
from ..config.pipeline import PipelineSettings
from ..errors import ModelAnswerError
from ..http.multipart import form_body
from .audio import as_wav, to_realtime_pcm

__all__ = ["PipelineModels"]


class PipelineModels:
    def __init__(self, caller: InProcessCaller, settings: PipelineSettings) -> None:
        self.caller = caller
        self.settings = settings

    async def transcribe(self, key: str | None, pcm: bytes) -> str:
        model = self.settings.transcription_model
        fields = {"model": model, "response_format": "json"}
        if self.settings.language:
            fields["language"] = self.settings.language
        body, content_type = form_body(fields, "turn.wav", as_wav(pcm))
        answer = await self.caller.call(form_call(body, content_type, "audio/transcriptions"), key=key)
        _check(model, answer)
        try:
            document = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise ModelAnswerError(model, 502, "the answer is not JSON") from None
        text = document.get("text") if isinstance(document, dict) else None
        return text.strip() if isinstance(text, str) else ""

    async def chat(
        self, key: str | None, request: dict[str, Any], on_text: Callable[[str], Awaitable[None]]
    ) -> ChatReply:
        model = self.settings.chat_model
        reader = ChatStreamReader(model, on_text)
        body = orjson.dumps({**request, "model": model, "stream": True, "stream_options": {"include_usage": True}})
        answer = await self.caller.call(json_call(body, "chat/completions"), key=key, on_body=reader.feed)
        return reader.finish(answer)

    async def speak(self, key: str | None, text: str, voice: str) -> bytes:
        model = self.settings.speech_model
        # WAV, not pcm: its header says the voice's own rate (eSpeak NG speaks at 22.05 kHz, Azure at 24 kHz).
        request = {"model": model, "input": text, "voice": voice, "response_format": "wav"}
        answer = await self.caller.call(json_call(orjson.dumps(request), "audio/speech"), key=key)
        _check(model, answer)
        return await asyncio.to_thread(to_realtime_pcm, model, answer.body)


def _check(model: str, answer: Answer) -> None:
    if answer.status < 400:
        return
    message = "no message"
    try:
        document = orjson.loads(answer.body)
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"][:500]
    except orjson.JSONDecodeError:
        message = answer.body[:300].decode("utf-8", "replace") or message
    raise ModelAnswerError(model, answer.status, message, answer.headers.get("retry-after"))
