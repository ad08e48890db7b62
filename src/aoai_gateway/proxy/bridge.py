"""The chat-completions bridge: a chat call to a deployment that answers only on the Responses API.

    body = chat_to_responses(call.document, "my-deployment")     # the Responses request, as bytes
    answer = await BridgedResponse.open(upstream_answer, stream, chat_document)   # reads like a chat answer

Request: messages become input items (tool calls `function_call`, tool results `function_call_output`), function
tools lose their `function` wrapper, `tool_choice` and `response_format` (`text.format`) are renamed, the token
bound becomes `max_output_tokens`; the response is not stored upstream. Answer: the output's text and function
calls become one choice, `usage` is renamed, the finish reason follows the status; a stream's typed events become
`chat.completion.chunk`s (with a usage chunk when `stream_options.include_usage`) and end with `data: [DONE]`.
An error answer passes unchanged: both APIs share the error shape.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..errors import InvalidRequest
from ..upstream import UpstreamResponse

_COPIED = ("temperature", "top_p", "parallel_tool_calls", "user", "metadata", "stream", "service_tier")


def chat_to_responses(chat: dict[str, Any], deployment: str) -> bytes:
    """A chat-completions request as a Responses request for `deployment`."""
    if chat.get("n") not in (None, 1):
        raise InvalidRequest("This model answers on the Responses API, which has no `n`; send n=1.", param="n")
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    body: dict[str, Any] = {"model": deployment, "input": _input(messages), "store": False}
    body.update({name: chat[name] for name in _COPIED if chat.get(name) is not None})
    bound = chat.get("max_completion_tokens", chat.get("max_tokens"))
    if bound is not None:
        body["max_output_tokens"] = bound
    tools = chat.get("tools")
    if isinstance(tools, list):
        body["tools"] = [
            {"type": "function", **tool["function"]}
            for tool in tools
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        ]
    choice = chat.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        body["tool_choice"] = {"type": "function", "name": choice["function"].get("name")}
    elif choice is not None:
        body["tool_choice"] = choice
    form = chat.get("response_format")
    if isinstance(form, dict) and form.get("type") == "json_schema":
        body["text"] = {"format": {"type": "json_schema", **(form.get("json_schema") or {})}}
    elif isinstance(form, dict) and form.get("type") in ("json_object", "text"):
        body["text"] = {"format": {"type": form["type"]}}
    return orjson.dumps(body)


def _input(messages: list[Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequest("Each message must be an object.", param="messages")
        role = message.get("role")
        if role == "tool":
            output = _text(message.get("content"))
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": output})
            continue
        content = message.get("content")
        if content not in (None, "", []):
            items.append({"type": "message", "role": role, "content": _parts(content, role)})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments", ""),
                }
            )
    return items


def _parts(content: Any, role: Any) -> Any:
    if isinstance(content, str):
        return content
    text_type = "output_text" if role == "assistant" else "input_text"
    parts = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"type": text_type, "text": part.get("text", "")})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url") or {}
            parts.append({"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")})
    return parts


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def responses_to_chat(response: dict[str, Any]) -> dict[str, Any]:
    """A whole Responses answer as a chat completion."""
    text, calls = _output(response.get("output") or [])
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": response.get("id"),
        "object": "chat.completion",
        "created": response.get("created_at") or int(time.time()),
        "model": response.get("model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(response, bool(calls)), "logprobs": None}
        ],
        "usage": _usage(response.get("usage")),
    }


def _output(output: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    text, calls = "", []
    for item in output:
        if item.get("type") == "message":
            text += "".join(p.get("text", "") for p in item.get("content") or () if p.get("type") == "output_text")
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments", "")}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    return text, calls


def _finish(response: dict[str, Any], called: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def _usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _ChunkWriter:
    """Responses stream events in, chat.completion.chunk events out."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.id, self.model, self.created = "", None, int(time.time())
        self.calls: dict[int, int] = {}  # output_index -> tool call index

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._event({"choices": [choice]})

    def _event(self, fields: dict[str, Any]) -> bytes:
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return b"data: " + orjson.dumps({**head, **fields}) + b"\n\n"

    def translate(self, event: dict[str, Any]) -> bytes:
        kind = event.get("type")
        if kind == "response.created":
            response = event.get("response") or {}
            self.id, self.model = response.get("id", ""), response.get("model")
            return self.chunk({"role": "assistant", "content": ""})
        if kind == "response.output_text.delta":
            return self.chunk({"content": event.get("delta", "")})
        if kind == "response.output_item.added" and (event.get("item") or {}).get("type") == "function_call":
            item = event["item"]
            index = self.calls.setdefault(event.get("output_index", 0), len(self.calls))
            call = {"index": index, "id": item.get("call_id"), "type": "function"}
            return self.chunk({"tool_calls": [{**call, "function": {"name": item.get("name"), "arguments": ""}}]})
        if kind == "response.function_call_arguments.delta":
            index = self.calls.get(event.get("output_index", 0), 0)
            return self.chunk({"tool_calls": [{"index": index, "function": {"arguments": event.get("delta", "")}}]})
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            response = event.get("response") or {}
            out = self.chunk({}, _finish(response, bool(self.calls)))
            if self.include_usage:
                out += self._event({"choices": [], "usage": _usage(response.get("usage"))})
            return out + b"data: [DONE]\n\n"
        if kind == "error":
            return b"data: " + orjson.dumps({"error": {k: event.get(k) for k in ("message", "type", "param", "code")}})
        return b""


class BridgedResponse:
    """An upstream Responses answer that reads as a chat-completions answer (the `UpstreamResponse` protocol)."""

    audio_seconds = 0.0

    def __init__(self, upstream: UpstreamResponse, body: bytes | None, include_usage: bool) -> None:
        self._upstream = upstream
        self._body = body
        self._writer = _ChunkWriter(include_usage)
        self.status = upstream.status
        self.raw_headers = [(k, v) for k, v in upstream.raw_headers if k.lower() != b"content-length"]
        if body is not None:
            self.raw_headers.append((b"content-length", str(len(body)).encode()))

    @classmethod
    async def open(cls, upstream: UpstreamResponse, stream: bool, chat: dict[str, Any]) -> BridgedResponse:
        options = chat.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if stream and upstream.status == 200:
            return cls(upstream, None, include_usage)
        body = await upstream.read()
        if upstream.status == 200:
            body = orjson.dumps(responses_to_chat(orjson.loads(body)))
        return cls(upstream, body, include_usage)

    async def read(self) -> bytes:
        return self._body if self._body is not None else await self._upstream.read()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._body is not None:
            yield self._body
            return
        pending = b""
        async for chunk in self._upstream.iter_chunks():
            pending += chunk
            *events, pending = pending.split(b"\n\n")
            out = b"".join(self._translate(event) for event in events)
            if out:
                yield out

    def _translate(self, event: bytes) -> bytes:
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    return self._writer.translate(orjson.loads(line[5:]))
                except orjson.JSONDecodeError:
                    return b""
        return b""

    async def release(self) -> None:
        await self._upstream.release()
