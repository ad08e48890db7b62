"""What the emulated model says: deterministic content, tool calls and structured output for a chat request.

    answer = plan_answer(call, messages, options)   # -> Answer(content="You said: hi", finish_reason="stop")

Decision order, first match wins:
 1. the last user message holds `[[content_filter:output]]`: no content, finish_reason `content_filter`;
 2. a turn queued for the deployment with `POST /_emulator/script` (scripts.py): its content and tool calls,
    exactly as scripted (names and arguments are not checked against `tools`, so a test can send a bad call);
 3. fixed content (`x-emulator-content` header, else the deployment's `responses` list);
 4. tool calls, when `tools` are given and `tool_choice` names a function, is "required" (the tools named
    in the last user message, else the first tool), or is "auto"/absent and the last user message names a
    tool (several named tools give parallel calls unless `parallel_tool_calls` is false). Arguments are
    a small instance of the function's `parameters` schema;
 5. `response_format` `json_schema`: a small instance of the schema; `json_object`: {"reply": <echo>};
    in both 4 and 5, a string property named `quote` holds a verbatim passage of the last user message (of the
    last `<tag>...</tag>` block in it when there is one, such as a `<transcript>`): sentences in turn, each cut
    to its first 12 words, so a caller that checks quotes against its text finds them;
 6. text: "You said: <last user message>", or, right after tool results, "Tool results received: ...".
`x-emulator-response: invalid-json` cuts the JSON (content or arguments) short; `schema-violation` drops
a required property. `max_tokens`/`max_completion_tokens` then truncate content (finish_reason `length`).
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .call import Call, ResponseMode
from .errors import InvalidRequest
from .filters import output_filtered
from .schema_instance import instance_of, violating_instance
from .tokens import count_tokens, truncate

__all__ = ["Answer", "ChatOptions", "ToolCall", "message_text", "plan_answer"]

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_CLOSING_TAG = re.compile(r"</([A-Za-z][\w-]{0,40})>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUOTE_WORDS = 12


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """The request fields that shape the answer, already validated."""

    n: int = 1
    max_tokens: int | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    content: str | None
    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def filtered(self) -> bool:
        return self.finish_reason == "content_filter"

    def tokens(self) -> int:
        """Completion tokens of one choice."""
        total = count_tokens(self.content or "")
        return total + sum(count_tokens(f"{call.name} {call.arguments}") for call in self.tool_calls)


def message_text(message: dict[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def plan_answer(call: Call, messages: list[dict[str, Any]], options: ChatOptions) -> Answer:
    user_text = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    if output_filtered(user_text):
        return Answer(None, "content_filter")
    turn = call.next_turn()
    if turn is not None:
        calls = tuple(ToolCall(c.call_id(), c.name, c.arguments_text()) for c in turn.tool_calls)
        return Answer(turn.content, "tool_calls" if calls else "stop", calls)
    fixed = call.fixed_content()
    mode = call.response_mode()
    if fixed is None:
        chosen = _chosen_functions(options, messages[-1], user_text)
        if chosen:
            excerpts = quotable(user_text)
            return Answer(None, "tool_calls", tuple(_tool_call(function, mode, excerpts) for function in chosen))
    content = fixed if fixed is not None else _content(options, messages[-1], user_text, mode)
    if options.max_tokens is not None:
        content, cut = truncate(content, options.max_tokens)
        if cut:
            return Answer(content, "length")
    return Answer(content, "stop")


def _content(options: ChatOptions, last: dict[str, Any], user_text: str, mode: ResponseMode | None) -> str:
    if last.get("role") == "tool":
        echo = f"Tool results received: {message_text(last)}"
    else:
        echo = f"You said: {user_text.strip()}" if user_text.strip() else "Hello from the Azure OpenAI emulator."
    response_format = options.response_format or {}
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return _structured(schema, mode, quotable(user_text))
    if kind == "json_object" or mode is not None:
        schema = {"type": "object", "properties": {"reply": {"const": echo}}, "required": ["reply"]}
        return _structured(schema, mode)
    return echo


def quotable(text: str) -> list[str]:
    """Verbatim passages of `text` to quote: its last tagged block's (or its own) sentences, 12 words at most."""
    body = text
    # Linear in the text: the last closing tag, then its opening before it.
    closing = next(iter(collections.deque(_CLOSING_TAG.finditer(text), maxlen=1)), None)
    if closing is not None:
        opening = text.rfind(f"<{closing[1]}>", 0, closing.start())
        if opening >= 0:
            body = text[opening + len(closing[1]) + 2 : closing.start()]
    return [" ".join(words[:_QUOTE_WORDS]) for part in _SENTENCE_END.split(body) if (words := part.split())]


def _structured(schema: Any, mode: ResponseMode | None, excerpts: list[str] | None = None) -> str:
    if mode == "schema-violation":
        return orjson.dumps(violating_instance(schema)).decode()
    text = orjson.dumps(instance_of(schema, excerpts or ())).decode()
    # Cut before the closing bracket: what a model that stopped early produces.
    return text[: max(1, len(text) - 1)] if mode == "invalid-json" else text


def _chosen_functions(options: ChatOptions, last: dict[str, Any], user_text: str) -> list[dict[str, Any]]:
    functions = [tool["function"] for tool in options.tools]
    choice = options.tool_choice
    if not functions or choice == "none":
        return []
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        forced = [function for function in functions if function.get("name") == name]
        if not forced:
            raise InvalidRequest(
                f"Invalid value for 'tool_choice': function '{name}' is not one of the 'tools'.",
                param="tool_choice",
                code="invalid_value",
            )
        return forced
    if last.get("role") == "tool" and choice != "required":
        return []  # answer the tool results rather than loop on calls
    named = [function for function in functions if function.get("name") and function["name"] in user_text]
    chosen = named or (functions[:1] if choice == "required" else [])
    return chosen if options.parallel_tool_calls else chosen[:1]


def _tool_call(function: dict[str, Any], mode: ResponseMode | None, excerpts: list[str]) -> ToolCall:
    parameters = function.get("parameters") or _EMPTY_PARAMETERS
    return ToolCall(f"call_{os.urandom(12).hex()}", str(function["name"]), _structured(parameters, mode, excerpts))
