"""The Responses API: create (JSON or typed SSE events), retrieve, delete, input items, cancel, background mode.

    table = ResponseTable()                                  # one per emulator instance: ids are local to it
    reply = table.create(call)                               # Reply.json(response) or the event stream
    table.retrieve("resp_..."), table.delete(...), table.input_items(..., query), table.cancel(...)

The answer is planned by the chat emulator's rules (`chat_answer.py`): the input items become chat messages,
function tools become chat tools, `text.format` a response format, so tool calls, structured output and echoes
match what `/chat/completions` says. A response created with `store` (the default) is kept here; an id this
instance never stored is a 404, which makes a gateway's sticky routing observable. A `background` response is
`queued` when created and `completed` from `BACKGROUND_SECONDS` later on, unless cancelled before.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .call import Call, Reply
from .chat_answer import Answer, ChatOptions, message_text, plan_answer
from .errors import EmulatorError, InvalidRequest
from .filters import check_prompt
from .tokens import count_tokens, split_for_stream
from .validation import optional_bool, optional_int, optional_mapping, optional_str

__all__ = ["BACKGROUND_SECONDS", "ResponseNotFound", "ResponseTable"]

BACKGROUND_SECONDS = 0.3
_EVENT_STREAM = b"text/event-stream; charset=utf-8"
_ARGUMENT_PIECE = 16


class ResponseNotFound(EmulatorError):
    status = 404

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id

    def body(self) -> dict[str, Any]:
        message = f"Response with id '{self.response_id}' not found."
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


@dataclass(slots=True)
class _Stored:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # the conversation so far, as chat messages, for `previous_response_id`
    ready_at: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)  # a background response's finished state


class ResponseTable:
    def __init__(self) -> None:
        self._stored: dict[str, _Stored] = {}

    def create(self, call: Call) -> Reply:
        body = call.json
        previous_id = optional_str(body, "previous_response_id")
        history: list[dict[str, Any]] = []
        if previous_id is not None:
            history = list(self._get(previous_id).messages)
        items = _input_items(body)
        messages = [*history, *(_message_of(item) for item in items)]
        instructions = optional_str(body, "instructions")
        prompt = ([{"role": "system", "content": instructions}] if instructions else []) + messages
        check_prompt([message_text(m) for m in prompt])
        tools = _tools(body)
        options = ChatOptions(
            max_tokens=optional_int(body, "max_output_tokens", minimum=1),
            tools=tuple({"type": "function", "function": tool} for tool in tools),
            tool_choice=_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=optional_bool(body, "parallel_tool_calls") is not False,
            response_format=_response_format(body),
        )
        answer = plan_answer(call, prompt or [{"role": "user", "content": ""}], options)
        output = _output(answer)
        stream = optional_bool(body, "stream") or False
        background = optional_bool(body, "background") or False
        store = optional_bool(body, "store") is not False
        if background and not store:
            raise InvalidRequest("Background responses must be stored: set 'store' to true.", param="background")
        input_tokens = sum(count_tokens(message_text(m)) + 3 for m in prompt) + (
            count_tokens(orjson.dumps(tools).decode()) if tools else 0
        )
        output_tokens = answer.tokens()
        response_id = f"resp_{os.urandom(24).hex()}"
        response = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "background": background,
            "error": None,
            "incomplete_details": None,
            "instructions": instructions,
            "max_output_tokens": options.max_tokens,
            "model": call.deployment.model,
            "output": output,
            "parallel_tool_calls": options.parallel_tool_calls,
            "previous_response_id": previous_id,
            "reasoning": {"effort": None, "summary": None},
            "store": store,
            "temperature": body.get("temperature", 1.0),
            "text": {"format": (optional_mapping(body, "text") or {}).get("format") or {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": tools,
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        if answer.finish_reason == "length":
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        if store:
            stored_items = [{"id": f"msg_{os.urandom(16).hex()}", "status": "completed", **i} for i in items]
            stored = _Stored(response, stored_items, [*messages, *_messages_of_output(output)])
            self._stored[response_id] = stored
            if background:
                stored.final = dict(response)
                stored.ready_at = time.monotonic() + BACKGROUND_SECONDS
                stored.response = {**response, "status": "queued", "output": [], "usage": None}
                if not stream:
                    return Reply.json(stored.response)
        tokens = input_tokens + output_tokens
        if stream:
            return Reply(_events(response), _EVENT_STREAM, tokens, streamed=True)
        return Reply.json(response, tokens=tokens)

    def retrieve(self, response_id: str) -> dict[str, Any]:
        return self._get(response_id).response

    def delete(self, response_id: str) -> dict[str, Any]:
        self._get(response_id)
        del self._stored[response_id]
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    def input_items(self, response_id: str, order: str | None, limit: int) -> dict[str, Any]:
        items = list(self._get(response_id).input_items)
        if order != "asc":
            items.reverse()  # newest first, as the API lists by default
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > len(page),
        }

    def cancel(self, response_id: str) -> dict[str, Any]:
        stored = self._get(response_id)
        if not stored.response.get("background"):
            raise InvalidRequest("Only responses created with background set to true can be cancelled.")
        if stored.response["status"] in ("queued", "in_progress"):
            stored.response = {**stored.response, "status": "cancelled"}
            stored.final = {}
        return stored.response

    def _get(self, response_id: str) -> _Stored:
        stored = self._stored.get(response_id)
        if stored is None:
            raise ResponseNotFound(response_id)
        if stored.final and time.monotonic() >= stored.ready_at:
            stored.response, stored.final = stored.final, {}
        return stored


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    if value is None:
        if body.get("previous_response_id") is None:
            raise InvalidRequest(
                "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
            )
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise InvalidRequest("Invalid type for 'input': expected a string or an array.", param="input")
    items = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for 'input[{index}]': expected an object.", param=f"input[{index}]")
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                content = [
                    {"type": "input_text" if item.get("role") != "assistant" else "output_text", "text": content}
                ]
            items.append({**item, "type": "message", "content": content})
        elif kind in ("function_call", "function_call_output"):
            items.append(item)
        else:
            raise InvalidRequest(f"Invalid value: '{kind}'. Unsupported input item type.", param=f"input[{index}].type")
    return items


def _message_of(item: dict[str, Any]) -> dict[str, Any]:
    kind = item["type"]
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments")},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if kind == "function_call_output":
        return {"role": "tool", "tool_call_id": item.get("call_id"), "content": str(item.get("output", ""))}
    role = item.get("role", "user")
    return {"role": role, "content": item.get("content")}


def _messages_of_output(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_message_of(item) for item in output]


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", param="tools")
    functions = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"Invalid 'tools[{index}]': expected a function tool with a name.", param="tools")
        functions.append(tool)
    return functions


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    text = optional_mapping(body, "text") or {}
    form = text.get("format")
    if not isinstance(form, dict):
        return None
    if form.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": form.get("name"), "schema": form.get("schema", {})}}
    return {"type": form.get("type")}


def _output(answer: Answer) -> list[dict[str, Any]]:
    if answer.tool_calls:
        return [
            {
                "id": f"fc_{os.urandom(16).hex()}",
                "type": "function_call",
                "status": "completed",
                "call_id": tool.id,
                "name": tool.name,
                "arguments": tool.arguments,
            }
            for tool in answer.tool_calls
        ]
    text = answer.content or ""
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {"id": f"msg_{os.urandom(16).hex()}", "type": "message", "status": "completed", "role": "assistant"}
    return [{**message, "content": [part]}]


def _events(response: dict[str, Any]) -> list[bytes]:
    """The typed event stream of one response, each event one chunk: `event: <type>` and its `data:`."""
    events: list[dict[str, Any]] = []
    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    events += [{"type": "response.created", "response": opening}, {"type": "response.in_progress", "response": opening}]
    for index, item in enumerate(response["output"]):
        events.append({"type": "response.output_item.added", "output_index": index, "item": _opened(item)})
        if item["type"] == "function_call":
            arguments = item["arguments"]
            for start in range(0, len(arguments), _ARGUMENT_PIECE):
                piece = arguments[start : start + _ARGUMENT_PIECE]
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": piece,
                    }
                )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "arguments": arguments,
                }
            )
        else:
            text = item["content"][0]["text"]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append({"type": "response.content_part.added", **where, "part": empty})
            for piece in split_for_stream(text):
                events.append({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []})
            events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
            events.append({"type": "response.content_part.done", **where, "part": item["content"][0]})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.append({"type": final, "response": response})
    return [
        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps({**event, "sequence_number": number}) + b"\n\n"
        for number, event in enumerate(events)
    ]


def _opened(item: dict[str, Any]) -> dict[str, Any]:
    if item["type"] == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    return {**item, "status": "in_progress", "content": []}
