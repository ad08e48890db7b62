"""One response of a pipeline session: the chat model over the conversation, its words spoken, or its function
calls handed to the client, each step as Realtime server events.

    response = PipelineResponse(context, options)      # context: the session's models, key, emit, conversation
    await response.run()                               # response.created ... response.done (with usage)

The transcripts still being made are awaited first, so a response never answers a turn it has not heard. Text
deltas go out as the model writes them (`response.output_audio_transcript.delta`, or `response.output_text.delta`
for text-only sessions); each finished sentence is spoken at once while the model writes the next (the assistant's
`SentenceSpeaker`) and sent, in order, as ~100 ms `response.output_audio.delta` pieces. A function call is an
output item the client runs: `response.function_call_arguments.done`, after which the client adds a
`function_call_output` item and asks for the next response, as with OpenAI. Cancelled (by `response.cancel`, or
by speech when `interrupt_response`): `response.done` says `cancelled`. A model's or the gateway's error: an
`error` event and `response.done` with status `failed`; the session goes on.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..assistant.events import TurnEvent
from ..assistant.speaker import SentenceSpeaker
from ..errors import GatewayError
from .audio import chunks
from .conversation import Conversation, item_id
from .models import PipelineModels

Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class ResponseContext:
    models: PipelineModels
    key: str | None
    emit: Emit
    conversation: Conversation
    hearing: Callable[[], Sequence[asyncio.Task[None]]]  # the transcriptions still being made


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    instructions: str
    voice: str
    audio: bool  # speak the reply; False: text only
    tools: tuple[dict[str, Any], ...]
    tool_choice: str | dict[str, Any]


class PipelineResponse:
    def __init__(self, context: ResponseContext, options: ResponseOptions) -> None:
        self.context = context
        self.options = options
        self.id = f"resp_{uuid.uuid4().hex[:20]}"
        self.output: list[dict[str, Any]] = []
        self.usage = (0, 0)
        self.cancel_reason = "client_cancelled"
        self._message: dict[str, Any] | None = None
        self._speaker: SentenceSpeaker | None = None

    def _where(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": item["id"], "output_index": self.output.index(item)}

    async def run(self) -> None:
        emit = self.context.emit
        emit({"type": "response.created", "response": self._described("in_progress")})
        try:
            await asyncio.gather(*self.context.hearing())
            reply = await self.context.models.chat(self.context.key, self._request(), self._text)
            self.usage = (reply.prompt_tokens, reply.completion_tokens)
            if self._message is not None:
                await self._finish_message(reply.content)
            for call in reply.tool_calls:
                self._function_call(call.id, call.name, call.arguments)
        except asyncio.CancelledError:
            if self._speaker is not None:
                self._speaker.cancel()
            emit({"type": "response.done", "response": self._described("cancelled", reason=self.cancel_reason)})
            raise
        except GatewayError as exc:
            if self._speaker is not None:
                self._speaker.cancel()
            error = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
            emit({"type": "error", "error": {**error, "event_id": None}})
            emit({"type": "response.done", "response": self._described("failed", error=error)})
            return
        emit({"type": "response.done", "response": self._described("completed")})

    def _request(self) -> dict[str, Any]:
        options = self.options
        request: dict[str, Any] = {"messages": self.context.conversation.messages(options.instructions)}
        if options.tools:
            request["tools"] = [
                {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
                for tool in options.tools
            ]
            choice = options.tool_choice
            request["tool_choice"] = (
                choice if isinstance(choice, str) else {"type": "function", "function": {"name": choice["name"]}}
            )
        return request

    async def _text(self, delta: str) -> None:
        emit = self.context.emit
        if self._message is None:
            self._message = self._start_message()
            if self.options.audio:
                self._speaker = SentenceSpeaker(self._speak, self.context.key, self._audio, "pcm")
        kind = "response.output_audio_transcript.delta" if self.options.audio else "response.output_text.delta"
        emit({"type": kind, **self._where(self._message), "content_index": 0, "delta": delta})
        if self._speaker is not None:
            await self._speaker.feed(delta)

    async def _speak(self, key: str | None, sentence: str) -> bytes:
        return await self.context.models.speak(key, sentence, self.options.voice)

    async def _audio(self, event: TurnEvent) -> None:
        """One spoken sentence (the speaker's event, base64 pcm16 24 kHz) as ~100 ms deltas."""
        assert self._message is not None  # the speaker starts with the message
        where = {**self._where(self._message), "content_index": 0}
        for piece in chunks(base64.b64decode(event.data["data"])):
            self.context.conversation.said(self._message["id"], len(piece))
            self.context.emit(
                {"type": "response.output_audio.delta", **where, "delta": base64.b64encode(piece).decode()}
            )

    def _start_message(self) -> dict[str, Any]:
        part = {"type": "output_audio", "transcript": ""} if self.options.audio else {"type": "output_text", "text": ""}
        item = {
            "id": item_id(),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [part],
        }
        self._added(item)
        shown = {"type": "audio", "transcript": ""} if self.options.audio else {"type": "text", "text": ""}
        self.context.emit(
            {"type": "response.content_part.added", **self._where(item), "content_index": 0, "part": shown}
        )
        return item

    async def _finish_message(self, text: str) -> None:
        emit, item = self.context.emit, self._message
        assert item is not None  # only called once a delta started it
        where = {**self._where(item), "content_index": 0}
        if self._speaker is not None:
            await self._speaker.finish()
            emit({"type": "response.output_audio.done", **where})
            emit({"type": "response.output_audio_transcript.done", **where, "transcript": text})
            item["content"] = [{"type": "output_audio", "transcript": text}]
            part = {"type": "audio", "transcript": text}
        else:
            emit({"type": "response.output_text.done", **where, "text": text})
            item["content"] = [{"type": "output_text", "text": text}]
            part = {"type": "text", "text": text}
        emit({"type": "response.content_part.done", **where, "part": part})
        self._done(item)

    def _function_call(self, call_id: str, name: str, arguments: str) -> None:
        item = {
            "id": item_id(),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        self._added(item)
        where = self._where(item)
        emit = self.context.emit
        emit({"type": "response.function_call_arguments.delta", **where, "call_id": call_id, "delta": arguments})
        emit(
            {
                "type": "response.function_call_arguments.done",
                **where,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        )
        item["arguments"] = arguments
        self._done(item)

    def _added(self, item: dict[str, Any]) -> None:
        previous = self.context.conversation.last_id
        self.output.append(item)
        self.context.conversation.add(item)
        self.context.emit(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": len(self.output) - 1,
                "item": item,
            }
        )
        self.context.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})

    def _done(self, item: dict[str, Any]) -> None:
        item["status"] = "completed"
        emit = self.context.emit
        emit(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": self.output.index(item),
                "item": item,
            }
        )
        emit({"type": "conversation.item.done", "previous_item_id": None, "item": item})

    def _described(self, status: str, reason: str | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason}
        elif status == "failed":
            details = {"type": "failed", "error": error}
        prompt, completion = self.usage
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": self.output if status != "in_progress" else [],
            "conversation_id": None,
            "output_modalities": ["audio"] if self.options.audio else ["text"],
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.options.voice}},
            "usage": {
                "total_tokens": prompt + completion,
                "input_tokens": prompt,
                "output_tokens": completion,
                "input_token_details": {"text_tokens": prompt, "audio_tokens": 0, "cached_tokens": 0},
                "output_token_details": {"text_tokens": completion, "audio_tokens": 0},
            }
            if status != "in_progress"
            else None,
        }


__all__ = ["Emit", "PipelineResponse", "ResponseContext", "ResponseOptions"]
