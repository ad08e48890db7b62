"""`chat/completions`: validate the request, plan the answer, render Azure's JSON or SSE stream.

    reply = create_chat_completion(call)   # Reply.json(...) or Reply.sse(...)

The stream has Azure's shape: a first event with empty `choices` and only `prompt_filter_results`; per
choice a role event, content events of a few words each (each with `content_filter_results`), or tool-call
events with the arguments split over several events; a final event with `finish_reason`; with
`stream_options.include_usage` an event with empty `choices` and `usage`; then `data: [DONE]`.

Usage counts tokens with the rule in `tokens.py`: each message costs 3 plus its text, the reply is primed
with 3 more, and tool definitions cost their compact JSON.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import orjson

from .call import Call, Reply
from .chat_answer import Answer, ChatOptions, message_text, plan_answer
from .errors import InvalidRequest
from .filters import (
    CHOICE_RESULTS,
    EMPTY_RESULTS,
    check_prompt,
    filtered_choice_results,
    prompt_filter_results,
)
from .tokens import count_tokens, split_for_stream
from .validation import (
    optional_bool,
    optional_choice,
    optional_int,
    optional_mapping,
    required_list,
)

__all__ = ["create_chat_completion", "system_fingerprint", "usage_block"]

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_FORMATS = ("text", "json_object", "json_schema")
_ARGUMENT_PIECE = 16  # characters of tool-call arguments per stream event


def create_chat_completion(call: Call) -> Reply:
    body = call.json
    messages = _messages(body)
    texts = [message_text(message) for message in messages]
    check_prompt(texts)
    options = _options(body, texts)
    stream = optional_bool(body, "stream") or False
    stream_options = optional_mapping(body, "stream_options")
    if stream_options is not None and not stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    # Every choice says the same; planning once keeps scripted `responses` advancing once per request.
    choices = [plan_answer(call, messages, options)] * options.n
    prompt_tokens = _prompt_tokens(texts, options)
    completion_tokens = sum(answer.tokens() for answer in choices)
    usage = usage_block(prompt_tokens, completion_tokens)
    head = {
        "id": f"chatcmpl-{os.urandom(15).hex()[:29]}",
        "created": int(time.time()),
        "model": call.deployment.model,
        "system_fingerprint": system_fingerprint(call.deployment.model),
    }
    if stream:
        include_usage = bool((stream_options or {}).get("include_usage"))
        events = _stream_events(head, choices, usage if include_usage else None)
        return Reply.sse(events, tokens=prompt_tokens + completion_tokens)
    return Reply.json(
        {
            **head,
            "object": "chat.completion",
            "prompt_filter_results": prompt_filter_results(),
            "choices": [_choice(index, answer) for index, answer in enumerate(choices)],
            "usage": usage,
        },
        tokens=prompt_tokens + completion_tokens,
    )


def usage_block(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def system_fingerprint(model: str) -> str:
    """Stable per model, like Azure's, so callers that log it see a constant."""
    return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = required_list(body, "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(
                f"Invalid type for 'messages[{index}]': expected an object.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
        if "role" not in message:
            raise InvalidRequest(
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="missing_required_parameter",
            )
        optional_choice(message, "role", _ROLES, "", param=f"messages[{index}].role")
    return messages


def _options(body: dict[str, Any], texts: list[str]) -> ChatOptions:
    max_tokens = optional_int(body, "max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = optional_int(body, "max_tokens", minimum=1)
    response_format = optional_mapping(body, "response_format")
    if response_format is not None:
        kind = optional_choice(response_format, "type", _FORMATS, "text", param="response_format.type")
        if kind == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
            raise InvalidRequest(
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        if kind == "json_object" and not any("json" in text.lower() for text in texts):
            raise InvalidRequest(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
    return ChatOptions(
        n=optional_int(body, "n", minimum=1, maximum=128) or 1,
        max_tokens=max_tokens,
        tools=_tools(body),
        tool_choice=body.get("tool_choice"),
        parallel_tool_calls=optional_bool(body, "parallel_tool_calls") is not False,
        response_format=response_format,
    )


def _tools(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = body.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(
                f"Missing required parameter: 'tools[{index}].function.name'.",
                param=f"tools[{index}].function.name",
                code="missing_required_parameter",
            )
    return tuple(tools)


def _prompt_tokens(texts: list[str], options: ChatOptions) -> int:
    tokens = sum(count_tokens(text) + 3 for text in texts) + 3
    if options.tools:
        tokens += count_tokens(orjson.dumps(options.tools).decode())
    return tokens


def _choice(index: int, answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    return {
        "index": index,
        "message": message,
        "finish_reason": answer.finish_reason,
        "logprobs": None,
        "content_filter_results": _choice_results(answer),
    }


def _choice_results(answer: Answer) -> dict[str, Any]:
    if answer.filtered:
        return filtered_choice_results()
    return CHOICE_RESULTS if answer.content is not None else EMPTY_RESULTS


def _stream_events(head: dict[str, Any], choices: list[Answer], usage: dict[str, Any] | None) -> list[dict[str, Any]]:
    chunk_head = {**head, "object": "chat.completion.chunk"}

    def event(index: int, delta: dict[str, Any], results: dict[str, Any], finish: str | None = None) -> Any:
        choice = {
            "index": index,
            "delta": delta,
            "finish_reason": finish,
            "logprobs": None,
            "content_filter_results": results,
        }
        return {**chunk_head, "choices": [choice]}

    events: list[Any] = [
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": prompt_filter_results(),
        }
    ]
    for index, answer in enumerate(choices):
        if answer.tool_calls:
            opening = [
                {"index": k, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}}
                for k, c in enumerate(answer.tool_calls)
            ]
            if answer.content:  # a scripted turn that speaks and calls: the words come first, as models send them
                events.append(event(index, {"role": "assistant", "content": "", "refusal": None}, EMPTY_RESULTS))
                for piece in split_for_stream(answer.content):
                    events.append(event(index, {"content": piece}, CHOICE_RESULTS))
                opening_delta: dict[str, Any] = {"tool_calls": opening}
            else:
                opening_delta = {"role": "assistant", "content": None, "tool_calls": opening}
            events.append(event(index, opening_delta, EMPTY_RESULTS))
            for k, tool_call in enumerate(answer.tool_calls):
                arguments = tool_call.arguments
                for start in range(0, len(arguments), _ARGUMENT_PIECE):
                    piece = arguments[start : start + _ARGUMENT_PIECE]
                    delta = {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}
                    events.append(event(index, delta, EMPTY_RESULTS))
        else:
            events.append(event(index, {"role": "assistant", "content": "", "refusal": None}, EMPTY_RESULTS))
            for piece in split_for_stream(answer.content or ""):
                events.append(event(index, {"content": piece}, CHOICE_RESULTS))
        final_results = filtered_choice_results() if answer.filtered else EMPTY_RESULTS
        events.append(event(index, {}, final_results, answer.finish_reason))
    if usage is not None:
        events.append({**chunk_head, "choices": [], "usage": usage})
    return events
