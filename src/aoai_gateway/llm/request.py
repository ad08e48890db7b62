"""What a chat completion (or a completion) asks of a local model, read from its JSON body once.

request = GenerationRequest.from_chat(body)        # InvalidRequest (400, naming the parameter) for bad input
request = GenerationRequest.from_completion(body)

Only what the local model honours is read; a parameter it cannot honour (`n` > 1, `logprobs`) is refused with a 400
rather than ignored, so a client never believes it got what it did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import InvalidRequest

# Parameters that would change the answer's shape and that a local model does not produce.
_REFUSED = {
    "logprobs": "log probabilities",
    "top_logprobs": "log probabilities",
    "audio": "audio output",
    "prediction": "predicted outputs",
}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`mode`: "none" (answer in text), "auto" (the model decides), "required" (some tool), or "named"."""

    mode: str
    name: str | None = None


@dataclass(slots=True)
class GenerationRequest:
    messages: list[dict[str, Any]] | None  # chat; None for a completion
    prompt: str  # a completion's prompt ("" for chat: the chat template renders the messages)
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    json_schema: dict[str, Any] | None = None  # response_format json_schema's schema
    json_object: bool = False  # response_format json_object
    tools: list[dict[str, Any]] = field(default_factory=list)  # the declared functions: {name, parameters}
    tool_choice: ToolChoice = ToolChoice("none")
    parallel_tool_calls: bool = False  # only when asked for explicitly: several calls with "required"

    @classmethod
    def from_chat(cls, body: Any) -> GenerationRequest:
        body = body_object(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("'messages' must be a non-empty array.", param="messages", code="invalid_value")
        request = cls([_message(m, i) for i, m in enumerate(messages)], "")
        request._common(body, tokens_field="max_completion_tokens")
        request._response_format(body.get("response_format"))
        request._tools(body.get("tools"), body.get("tool_choice"))
        parallel = body.get("parallel_tool_calls")
        if not isinstance(parallel, bool | None):
            raise InvalidRequest("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")
        request.parallel_tool_calls = parallel is True
        return request

    @classmethod
    def from_completion(cls, body: Any) -> GenerationRequest:
        body = body_object(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise InvalidRequest("A local model takes 'prompt' as one string.", param="prompt", code="invalid_type")
        request = cls(None, prompt)
        request._common(body, tokens_field=None)
        return request

    def _common(self, body: dict[str, Any], tokens_field: str | None) -> None:
        for name, what in _REFUSED.items():
            if body.get(name) not in (None, False):
                raise InvalidRequest(f"Local models do not return {what}.", param=name, code="unsupported_parameter")
        if body.get("n") not in (None, 1):
            raise InvalidRequest("Local models answer with one choice: 'n' must be 1.", param="n")
        limit = body.get(tokens_field) if tokens_field else None
        self.max_tokens = _int(body, "max_tokens", 1) if limit is None else _int(body, tokens_field or "", 1)
        self.temperature = _number(body, "temperature", 0.0, 2.0, 1.0)
        self.top_p = _number(body, "top_p", 0.0, 1.0, 1.0)
        self.seed = _int(body, "seed", None)
        self.stop = _stop(body.get("stop"))
        stream = body.get("stream", False)
        if not isinstance(stream, bool | None):
            raise InvalidRequest("'stream' must be a boolean.", param="stream", code="invalid_type")
        self.stream = bool(stream)
        options = body.get("stream_options")
        if options is not None:
            if not self.stream:
                raise InvalidRequest(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
                )
            self.include_usage = isinstance(options, dict) and options.get("include_usage") is True

    def _response_format(self, value: Any) -> None:
        if value is None:
            return
        kind = value.get("type") if isinstance(value, dict) else None
        if kind == "text":
            return
        if kind == "json_object":
            self.json_object = True
            return
        if kind != "json_schema":
            raise InvalidRequest(
                "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
                param="response_format",
                code="invalid_value",
            )
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "'response_format.json_schema.schema' must be a JSON Schema object.",
                param="response_format.json_schema.schema",
                code="invalid_value",
            )
        self.json_schema = schema

    def _tools(self, tools: Any, choice: Any) -> None:
        if tools is None:
            if choice not in (None, "none"):
                raise InvalidRequest("'tool_choice' is only allowed when 'tools' are given.", param="tool_choice")
            return
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array.", param="tools", code="invalid_type")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"'tools[{index}]' must be a function tool with a name.", param=f"tools[{index}]")
            parameters = function.get("parameters") if isinstance(function, dict) else None
            if parameters is not None and not isinstance(parameters, dict):
                raise InvalidRequest(
                    f"'tools[{index}].function.parameters' must be a JSON Schema object.",
                    param=f"tools[{index}].function.parameters",
                )
            self.tools.append({"name": name, "parameters": parameters})
        names = {tool["name"] for tool in self.tools}
        if choice is None:
            self.tool_choice = ToolChoice("auto" if self.tools else "none")
        elif choice in ("none", "auto", "required"):
            self.tool_choice = ToolChoice(choice)
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            name = choice["function"].get("name")
            if name not in names:
                raise InvalidRequest(
                    f"'tool_choice' names a function that is not among 'tools': {name!r}.", param="tool_choice"
                )
            self.tool_choice = ToolChoice("named", name)
        else:
            raise InvalidRequest(
                "'tool_choice' must be 'none', 'auto', 'required' or a named function.", param="tool_choice"
            )
        if self.tool_choice.mode in ("required", "named") and self.json_schema is not None:
            raise InvalidRequest(
                "A forced tool call and a json_schema response_format cannot both shape one answer.",
                param="response_format",
            )


def body_object(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _message(message: Any, index: int) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise InvalidRequest(f"'messages[{index}]' must be an object with a role.", param=f"messages[{index}]")
    content = message.get("content")
    if isinstance(content, list):  # content parts: a local model reads the text ones
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise InvalidRequest(
                f"Local models read text content only: 'messages[{index}].content' has another part.",
                param=f"messages[{index}].content",
            )
        return {**message, "content": "".join(texts)}  # type: ignore[arg-type]
    if content is not None and not isinstance(content, str):
        raise InvalidRequest(f"'messages[{index}].content' must be a string.", param=f"messages[{index}].content")
    return dict(message)


def _int(body: dict[str, Any], name: str, minimum: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if minimum is not None and value < minimum:
        raise InvalidRequest(f"'{name}' must be at least {minimum}.", param=name, code="invalid_value")
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a number.", param=name, code="invalid_type")
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low:g} and {high:g}.", param=name, code="invalid_value")
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value if isinstance(value, list) else [] if value is None else None
    if stops is None or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise InvalidRequest("'stop' must be a string or up to 4 non-empty strings.", param="stop")
    return tuple(stops)
