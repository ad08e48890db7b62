"""The grammar's guarantee, with a model that writes gibberish: every json_schema answer is valid against its
schema, and every forced tool call is a call of a declared tool with valid arguments, seed after seed."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from openai import OpenAI

CONTACT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "age": {"type": "integer"},
        "active": {"type": "boolean"},
        "tier": {"enum": ["gold", "silver", "bronze"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "zip": {"type": ["string", "null"], "maxLength": 5},
            },
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "active", "tier", "tags", "address"],
    "additionalProperties": False,
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}, "unit": {"enum": ["c", "f"]}},
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_meeting",
            "parameters": {
                "type": "object",
                "properties": {
                    "attendees": {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 3},
                    "minutes": {"type": "integer"},
                },
                "required": ["attendees", "minutes"],
                "additionalProperties": False,
            },
        },
    },
    {"type": "function", "function": {"name": "hang_up"}},  # no parameters: `{}` is its only call
]
PARAMETERS = {
    t["function"]["name"]: t["function"].get("parameters", {"type": "object", "maxProperties": 0}) for t in TOOLS
}
ASK = [{"role": "user", "content": "Fill in the contact."}]
SEEDS = range(1, 9)


def test_every_json_schema_answer_is_valid_against_the_schema(client: OpenAI) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "contact", "schema": CONTACT, "strict": True}}
    answers = []
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="tiny-local",
            messages=ASK,  # type: ignore[arg-type]
            response_format=response_format,  # type: ignore[arg-type]
            max_tokens=400,
            seed=seed,
            temperature=1.0,
        )
        choice = answer.choices[0]
        assert choice.finish_reason == "stop", choice  # the grammar completed: the answer ended on its own
        document = json.loads(choice.message.content or "")
        jsonschema.validate(document, CONTACT)
        answers.append(document)
    assert len({json.dumps(a, sort_keys=True) for a in answers}) > 1  # gibberish that varies, not one canned answer


def test_a_streamed_json_schema_answer_is_valid_too(client: OpenAI) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "contact", "schema": CONTACT}}
    chunks = client.chat.completions.create(
        model="tiny-local",
        messages=ASK,  # type: ignore[arg-type]
        response_format=response_format,  # type: ignore[arg-type]
        max_tokens=400,
        seed=99,
        stream=True,
    )
    jsonschema.validate(json.loads("".join(c.choices[0].delta.content or "" for c in chunks)), CONTACT)


def test_json_object_mode_answers_a_json_object(client: OpenAI) -> None:
    for seed in (1, 2, 3):
        answer = client.chat.completions.create(
            model="tiny-local",
            messages=ASK,  # type: ignore[arg-type]
            response_format={"type": "json_object"},
            max_tokens=300,
            seed=seed,
        )
        if answer.choices[0].finish_reason == "stop":  # free-form JSON may be cut at max_tokens; whole, it parses
            assert isinstance(json.loads(answer.choices[0].message.content or ""), dict)


def test_a_required_tool_call_is_always_a_valid_call_of_a_declared_tool(client: OpenAI) -> None:
    called = set()
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="tiny-local",
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="required",
            max_tokens=300,
            seed=seed,
        )
        choice = answer.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        calls = choice.message.tool_calls or []
        assert len(calls) == 1 and calls[0].type == "function" and calls[0].id.startswith("call_")
        function = calls[0].function  # type: ignore[union-attr]
        jsonschema.validate(json.loads(function.arguments), PARAMETERS[function.name])
        called.add(function.name)
    assert called <= set(PARAMETERS)


def test_a_named_tool_call_calls_that_tool_streamed_or_not(client: OpenAI) -> None:
    choice = {"type": "function", "function": {"name": "book_meeting"}}
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="tiny-local",
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice=choice,  # type: ignore[arg-type]
            max_tokens=300,
            seed=seed,
        )
        call = (answer.choices[0].message.tool_calls or [])[0]
        assert call.function.name == "book_meeting"  # type: ignore[union-attr]
        jsonschema.validate(json.loads(call.function.arguments), PARAMETERS["book_meeting"])  # type: ignore[union-attr]
    chunks = list(
        client.chat.completions.create(
            model="tiny-local",
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": "hang_up"}},
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [d.function.name for d in deltas] == ["hang_up"]  # type: ignore[union-attr]
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {}  # type: ignore[union-attr]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 2
