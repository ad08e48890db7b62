"""The assistant's three model calls, made in-process through the gateway with the caller's own key.

    models = AssistantModels(caller, settings.assistant)
    heard = await models.transcribe(key, audio, "command.wav")          # Heard(text, language, duration)
    reply = await models.chat(key, request, on_text=print)              # streamed: text as it comes, tool calls
    audio = await models.speak(key, "The kitchen light is on.")         # bytes in settings.speech_format

Each call is a request to the gateway's own service (`InProcessCaller`): the key's allowlist and caps, routing,
failover, local Whisper and the usage ledger apply as to any client's request. An error answer from a model is a
`ModelAnswerError` with the model's status and message; the gateway's own refusals pass as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..api_call import form_call, json_call
from ..app import Answer, InProcessCaller
from ..config.assistant import AssistantSettings
from ..errors import ModelAnswerError
from ..http.multipart import form_body

__all__ = ["AssistantModels", "ChatReply", "ChatStreamReader", "Heard", "ToolCallRequest"]


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    language: str | None
    duration: float | None


@dataclass(slots=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str

    def message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class ChatReply:
    content: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def message(self) -> dict[str, Any]:
        """The assistant message to keep in the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [call.message_part() for call in self.tool_calls]
        return message


class ChatStreamReader:
    """Chat completion chunks (server-sent events) read as they are relayed: text out at once, tool calls built up."""

    def __init__(self, model: str, on_text: Callable[[str], Awaitable[None]]) -> None:
        self.model = model
        self.on_text = on_text
        self.reply = ChatReply()
        self._buffer = b""
        self._error = b""
        self._status = 200
        self._calls: dict[int, ToolCallRequest] = {}

    async def feed(self, status: int, piece: bytes) -> None:
        self._status = status
        if status >= 400:
            self._error += piece[: 65536 - len(self._error)]
            return
        self._buffer += piece
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            for line in event.splitlines():
                if line.startswith(b"data:"):
                    await self._data(line[5:].strip())

    async def _data(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # a keep-alive or a provider's comment; the answer is judged by what it says in the end
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if isinstance(usage, dict):
            self.reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.reply.completion_tokens = int(usage.get("completion_tokens") or 0)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.reply.finish_reason = str(choice["finish_reason"])
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.reply.content += text
                await self.on_text(text)
            for part in delta.get("tool_calls") or ():
                self._tool_call(part)

    def _tool_call(self, part: Any) -> None:
        if not isinstance(part, dict):
            return
        index = part.get("index", 0)
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ToolCallRequest("", "", "")
            self.reply.tool_calls.append(call)
        function: dict[str, Any] = part["function"] if isinstance(part.get("function"), dict) else {}
        if isinstance(part.get("id"), str):
            call.id = part["id"]
        if isinstance(function.get("name"), str):
            call.name += function["name"]
        if isinstance(function.get("arguments"), str):
            call.arguments += function["arguments"]

    def finish(self, answer: Answer) -> ChatReply:
        if answer.status >= 400:
            raise ModelAnswerError(
                self.model, answer.status, _error_text(self._error), answer.headers.get("retry-after")
            )
        if self.reply.finish_reason is None and self._buffer.lstrip().startswith(b"{"):
            self._whole(self._buffer)  # a server that ignored `stream` and answered one JSON body
        for number, call in enumerate(self.reply.tool_calls):
            call.id = call.id or f"call_{number}"
        return self.reply

    def _whole(self, body: bytes) -> None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ModelAnswerError(self.model, 502, "the answer is neither events nor JSON") from None
        choices = document.get("choices") if isinstance(document, dict) else None
        first: dict[str, Any] = (
            choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        )
        message: dict[str, Any] = first["message"] if isinstance(first.get("message"), dict) else {}
        content = message.get("content")
        self.reply.content = content if isinstance(content, str) else ""
        self.reply.finish_reason = str(first.get("finish_reason") or "stop")
        for index, part in enumerate(message.get("tool_calls") or ()):
            if isinstance(part, dict):
                self._tool_call({**part, "index": index})
        usage = document.get("usage") if isinstance(document, dict) else None
        if isinstance(usage, dict):
            self.reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.reply.completion_tokens = int(usage.get("completion_tokens") or 0)


class AssistantModels:
    def __init__(self, caller: InProcessCaller, settings: AssistantSettings) -> None:
        self.caller = caller
        self.settings = settings

    async def transcribe(self, key: str | None, audio: bytes, filename: str) -> Heard:
        model = self.settings.transcription_model
        fields = {"model": model, "response_format": "verbose_json"}
        if self.settings.language:
            fields["language"] = self.settings.language
        body, content_type = form_body(fields, filename, audio)
        answer = await self.caller.call(form_call(body, content_type, "audio/transcriptions"), key=key)
        document = _json_answer(model, answer)
        text, language, duration = document.get("text"), document.get("language"), document.get("duration")
        return Heard(
            text.strip() if isinstance(text, str) else "",
            language if isinstance(language, str) and language else self.settings.language,
            float(duration) if isinstance(duration, int | float) else None,
        )

    async def chat(
        self, key: str | None, request: dict[str, Any], on_text: Callable[[str], Awaitable[None]]
    ) -> ChatReply:
        """One streamed chat completion; `on_text` hears the reply's words as the model sends them."""
        model = str(request["model"])
        reader = ChatStreamReader(model, on_text)
        body = orjson.dumps({**request, "stream": True, "stream_options": {"include_usage": True}})
        answer = await self.caller.call(json_call(body, "chat/completions"), key=key, on_body=reader.feed)
        return reader.finish(answer)

    async def speak(self, key: str | None, text: str) -> bytes:
        model = self.settings.speech_model
        if model is None:
            raise ValueError("speak() without assistant.speech_model")
        request = {
            "model": model,
            "input": text,
            "voice": self.settings.voice,
            "response_format": self.settings.speech_format,
        }
        answer = await self.caller.call(json_call(orjson.dumps(request), "audio/speech"), key=key)
        if answer.status >= 400:
            raise ModelAnswerError(model, answer.status, _error_text(answer.body), answer.headers.get("retry-after"))
        return answer.body


def _json_answer(model: str, answer: Answer) -> dict[str, Any]:
    if answer.status >= 400:
        raise ModelAnswerError(model, answer.status, _error_text(answer.body), answer.headers.get("retry-after"))
    try:
        document = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise ModelAnswerError(model, 502, "the answer is not JSON") from None
    if not isinstance(document, dict):
        raise ModelAnswerError(model, 502, "the answer is not a JSON object")
    return document


def _error_text(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace") or "no message"
    error = document.get("error", document) if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:500]
    return "no message"
