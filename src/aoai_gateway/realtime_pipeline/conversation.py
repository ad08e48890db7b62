"""A pipeline session's conversation: Realtime items in order, and the chat messages they become.

    conversation = Conversation(max_items=200)
    item = conversation.add(client_item(event["item"]))        # checked: message, function_call(_output)
    conversation.heard(item_id, "turn on the light")           # a user audio item's transcript, once known
    conversation.said(item_id, 4800)                           # bytes of pcm16 an assistant item has spoken
    conversation.truncate(item_id, 0, audio_end_ms=800)        # the client played only that much of it
    messages = conversation.messages(instructions)             # system, user, assistant + tool_calls, tool

Items keep Realtime's shapes (what `conversation.item.added` shows the client); `messages()` writes them as chat
messages: consecutive function calls become one assistant message with parallel tool calls, each output a `tool`
message. Past `max_items` the oldest items go, a dangling tool output with them.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from ..errors import InvalidRequest
from .vad import SAMPLE_RATE

_ROLES = ("user", "assistant", "system")
# GA and beta part types alike (beta: `text` and `audio` for an assistant's output)
_TEXT_PARTS = {
    "input_text": "text",
    "output_text": "text",
    "text": "text",
    "output_audio": "transcript",
    "audio": "transcript",
}
MAX_TEXT = 256 * 1024  # characters of one item's text or function output


def item_id() -> str:
    return f"item_{uuid.uuid4().hex[:20]}"


class Conversation:
    def __init__(self, max_items: int) -> None:
        self.items: list[dict[str, Any]] = []
        self.max_items = max_items
        self.spoken: dict[str, int] = {}  # assistant item -> bytes of pcm16 24 kHz sent for it (for truncation)

    @property
    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def add(self, item: dict[str, Any]) -> dict[str, Any]:
        self.items.append(item)
        for gone in self.items[: max(0, len(self.items) - self.max_items)]:
            self.spoken.pop(gone["id"], None)
        del self.items[: max(0, len(self.items) - self.max_items)]
        return item

    def find(self, wanted: str) -> dict[str, Any] | None:
        return next((item for item in self.items if item["id"] == wanted), None)

    def delete(self, wanted: str) -> bool:
        found = self.find(wanted)
        if found is not None:
            self.items.remove(found)
            self.spoken.pop(wanted, None)
        return found is not None

    def heard(self, wanted: str, transcript: str) -> None:
        found = self.find(wanted)
        if found is not None:
            found["content"][0]["transcript"] = transcript

    def said(self, wanted: str, size: int) -> None:
        # Only for an item still here: one trimmed or deleted while it spoke must not leave a count behind.
        if wanted in self.spoken or self.find(wanted) is not None:
            self.spoken[wanted] = self.spoken.get(wanted, 0) + size

    def truncate(self, wanted: Any, content_index: Any, audio_end_ms: Any) -> None:
        """The client played an assistant's audio up to `audio_end_ms`: as OpenAI does, the transcript goes (the
        model must not believe it said what the user never heard), and the audio is that long from now on."""
        found = self.find(wanted) if isinstance(wanted, str) else None
        if found is None:
            raise _bad("No such item in the conversation.", "item_id", "item_not_found")
        content: list[dict[str, Any]] = found.get("content") or []
        if (
            found["type"] != "message"
            or found["role"] != "assistant"
            or not isinstance(content_index, int)
            or isinstance(content_index, bool)
            or not 0 <= content_index < len(content)
            or content[content_index]["type"] not in ("output_audio", "audio")
        ):
            raise _bad("Only an assistant message's audio content can be truncated.", "content_index")
        heard_ms = self.spoken.get(wanted, 0) * 1000 // (2 * SAMPLE_RATE)
        if isinstance(audio_end_ms, bool) or not isinstance(audio_end_ms, int) or not 0 <= audio_end_ms <= heard_ms:
            raise _bad(f"audio_end_ms must be from 0 to the audio's {heard_ms} ms.", "audio_end_ms")
        content[content_index]["transcript"] = ""
        self.spoken[wanted] = audio_end_ms * 2 * SAMPLE_RATE // 1000

    def messages(self, instructions: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
        answered = {item["call_id"] for item in self.items if item["type"] == "function_call_output"}
        calls = {item["call_id"] for item in self.items if item["type"] == "function_call"}
        for item in self.items:
            if item["type"] == "message":
                text = " ".join(filter(None, (_part_text(part) for part in item["content"])))
                if text:
                    messages.append({"role": item["role"], "content": text})
            elif item["type"] == "function_call" and item["call_id"] in answered:
                call = {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                    last["tool_calls"].append(call)
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif item["type"] == "function_call_output" and item["call_id"] in calls:
                messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        return messages


def client_item(item: Any) -> tuple[dict[str, Any], bytes | None]:
    """A `conversation.item.create` item in the server's shape, and the audio of an `input_audio` part to hear."""
    if not isinstance(item, dict):
        raise _bad("The item must be an object.", "item")
    kind = item.get("type", "message")
    made: dict[str, Any] = {"id": _client_id(item.get("id")), "object": "realtime.item", "status": "completed"}
    if kind == "function_call_output":
        made |= {"type": kind, "call_id": _text(item.get("call_id"), "item.call_id", 64)}
        made["output"] = _text(item.get("output"), "item.output", MAX_TEXT)
        return made, None
    if kind == "function_call":
        made |= {"type": kind, "call_id": _text(item.get("call_id"), "item.call_id", 64)}
        made["name"] = _text(item.get("name"), "item.name", 128)
        made["arguments"] = _text(item.get("arguments"), "item.arguments", MAX_TEXT)
        return made, None
    if kind != "message":
        raise _bad("Items are messages, function_call or function_call_output.", "item.type")
    role = item.get("role")
    if role not in _ROLES:
        raise _bad("A message's role is user, assistant or system.", "item.role")
    content = item.get("content")
    if not isinstance(content, list) or not content or len(content) > 16:
        raise _bad("A message's content is a list of 1 to 16 parts.", "item.content")
    parts: list[dict[str, Any]] = []
    audio: bytes | None = None
    for index, part in enumerate(content):
        where = f"item.content[{index}]"
        part_type = part.get("type") if isinstance(part, dict) else None
        if isinstance(part, dict) and part_type == "input_audio" and role == "user" and audio is None:
            audio = decode_audio(part.get("audio"), f"{where}.audio")
            parts.insert(0, {"type": "input_audio", "transcript": None})  # heard first: `heard()` fills index 0
        elif isinstance(part, dict) and part_type in _TEXT_PARTS:
            field = _TEXT_PARTS[part_type]
            parts.append({"type": part_type, field: _text(part.get(field), f"{where}.{field}", MAX_TEXT)})
        else:
            raise _bad("A part is input_text, text, output_text, output_audio, audio, or one user input_audio.", where)
    made |= {"type": "message", "role": role, "content": parts}
    return made, audio


def decode_audio(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise _bad("Audio is base64-encoded pcm16 text.", where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("The audio is not valid base64.", where) from None


def _part_text(part: dict[str, Any]) -> str | None:
    value = part.get("text", part.get("transcript"))
    return value if isinstance(value, str) else None


def _client_id(value: Any) -> str:
    if value is None:
        return item_id()
    return _text(value, "item.id", 64)


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where} must be a string.", where)
    if len(value) > limit:
        raise _bad(f"{where} is longer than {limit} characters.", where)
    return value


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)
