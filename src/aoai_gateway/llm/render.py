"""A local model's answer in OpenAI's shapes: a `chat.completion` / `text_completion` body, or its SSE chunks.

rendering = Rendering("chat/completions", "qwen-local", request)
rendering.whole(outcome, reply)        # the JSON body
rendering.opening()                    # the stream's first event (the assistant role), then:
rendering.delta("Hel")                 # one event per piece of text
rendering.closing(outcome, reply)      # a buffered tool call, the finish_reason, the usage chunk if asked, [DONE]

A tool call comes back as `message.tool_calls` with finish_reason "tool_calls", its arguments the JSON text of
the call; with `stream_options.include_usage` the last event before [DONE] has empty `choices` and the usage,
and the events before it carry `"usage": null`, as OpenAI's do.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from .model import Outcome
from .request import GenerationRequest
from .shapes import Reply


class Rendering:
    def __init__(self, operation: str, model: str, request: GenerationRequest) -> None:
        self.chat = operation == "chat/completions"
        self.request = request
        prefix, obj = ("chatcmpl", "chat.completion") if self.chat else ("cmpl", "text_completion")
        self._object = obj
        self._head = {"id": f"{prefix}-{os.urandom(12).hex()}", "created": int(time.time()), "model": model}

    def whole(self, outcome: Outcome, reply: Reply) -> bytes:
        finish = _finish(outcome, reply)
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
            if reply.tool_calls:
                message["tool_calls"] = [_tool_call(call) for call in reply.tool_calls]
            choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": outcome.text, "logprobs": None, "finish_reason": finish}
        body = {**self._head, "object": self._object, "choices": [choice], "usage": _usage(outcome)}
        return orjson.dumps(body)

    def opening(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""}) if self.chat else b""

    def delta(self, text: str) -> bytes:
        return self._chunk({"content": text}) if self.chat else self._chunk(None, text=text)

    def closing(self, outcome: Outcome, buffered: Reply | None) -> bytes:
        """The events after the last piece of text; `buffered`: an answer held back whole (a tool call)."""
        events = []
        if buffered is not None and buffered.tool_calls:
            calls = [{"index": i, **_tool_call(call)} for i, call in enumerate(buffered.tool_calls)]
            events.append(self._chunk({"tool_calls": calls}))
        elif buffered is not None and buffered.content:
            events.append(self.delta(buffered.content))
        finish = _finish(outcome, buffered or Reply(content=outcome.text))
        events.append(self._chunk({} if self.chat else None, finish=finish))
        if self.request.include_usage:
            events.append(_event({**self._head, "object": self._chunk_object, "choices": [], "usage": _usage(outcome)}))
        events.append(b"data: [DONE]\n\n")
        return b"".join(events)

    @property
    def _chunk_object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"

    def _chunk(self, delta: dict[str, Any] | None, *, text: str = "", finish: str | None = None) -> bytes:
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        chunk = {**self._head, "object": self._chunk_object, "choices": [choice]}
        if self.request.include_usage:
            chunk["usage"] = None
        return _event(chunk)


def _event(value: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"


def _finish(outcome: Outcome, reply: Reply) -> str:
    if reply.tool_calls and outcome.finish_reason == "stop":
        return "tool_calls"
    return outcome.finish_reason


def _tool_call(call: tuple[str, str]) -> dict[str, Any]:
    name, arguments = call
    return {
        "id": f"call_{os.urandom(12).hex()}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _usage(outcome: Outcome) -> dict[str, int]:
    prompt, completion = outcome.prompt_tokens, outcome.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
