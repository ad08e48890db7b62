"""Chat completions through the official SDK: content, streaming, tools, structured output, scripting."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Literal

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall
from pydantic import BaseModel

from .support import API_KEY, RunningEmulator

USER: Any = [{"role": "user", "content": "What is the weather like?"}]

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "coords": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                    "required": ["lat", "lon"],
                },
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "note": {"type": ["string", "null"]},
                "optional": {"type": "boolean"},
            },
            "required": ["city", "unit", "days", "coords", "tags", "note"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def function_calls(completion: ChatCompletion) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = completion.choices[0].message.tool_calls or []
    return [call for call in calls if isinstance(call, ChatCompletionMessageFunctionToolCall)]


def test_reply_echoes_the_last_user_message_with_azure_annotations(emulator_client: AzureOpenAI) -> None:
    raw = emulator_client.chat.completions.with_raw_response.create(model="gpt-4o-deploy", messages=USER)
    completion = raw.parse()

    assert completion.choices[0].message.content == "You said: What is the weather like?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o"
    assert completion.object == "chat.completion"
    assert completion.system_fingerprint and completion.system_fingerprint.startswith("fp_")
    extra = completion.model_extra or {}
    assert extra["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {
        "filtered": False,
        "detected": False,
    }
    choice_extra = completion.choices[0].model_extra or {}
    assert choice_extra["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert completion.usage is not None
    # 3 per message + "What is the weather like?" (What is the weat her like ?: 7) + 3 priming = 13;
    # "You said: ..." adds You said : to those 7.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (13, 10)
    for header in ("apim-request-id", "x-request-id", "x-ms-region", "x-ratelimit-remaining-requests"):
        assert raw.headers.get(header)
    assert raw.headers["x-ms-deployment-name"] == "gpt-4o-deploy"
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(1_000_000 - completion.usage.total_tokens)


def test_max_tokens_truncates_and_n_repeats_choices(emulator_client: AzureOpenAI) -> None:
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy", messages=USER, max_completion_tokens=3, n=2
    )

    assert [choice.index for choice in completion.choices] == [0, 1]
    assert all(choice.finish_reason == "length" for choice in completion.choices)
    assert completion.choices[0].message.content == "You said:"
    assert completion.usage is not None and completion.usage.completion_tokens == 6


def test_stream_has_azure_shape_and_usage_chunk(emulator_client: AzureOpenAI) -> None:
    stream = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=[{"role": "user", "content": "one two three four five six seven"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    first, role, *middle, final, usage = chunks
    assert first.choices == [] and (first.model_extra or {})["prompt_filter_results"]
    assert role.choices[0].delta.role == "assistant"
    assert len(middle) >= 3, "content should arrive over several chunks"
    assert all((chunk.choices[0].model_extra or {})["content_filter_results"] for chunk in middle)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in middle) == (
        "You said: one two three four five six seven"
    )
    assert final.choices[0].finish_reason == "stop"
    assert usage.choices == [] and usage.usage is not None and usage.usage.completion_tokens == 12


def test_forced_tool_call_arguments_satisfy_the_schema(emulator_client: AzureOpenAI) -> None:
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=USER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = function_calls(completion)
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city", "unit", "days", "coords", "tags", "note"}
    assert isinstance(arguments["city"], str) and len(arguments["city"]) >= 2
    assert arguments["unit"] in ("celsius", "fahrenheit")
    assert isinstance(arguments["days"], int) and 1 <= arguments["days"] <= 7
    assert isinstance(arguments["coords"]["lat"], float) and isinstance(arguments["coords"]["lon"], float)
    assert len(arguments["tags"]) >= 2 and all(isinstance(tag, str) for tag in arguments["tags"])
    assert arguments["note"] is None or isinstance(arguments["note"], str)


def test_auto_tool_choice_calls_the_tools_the_user_names(emulator_client: AzureOpenAI) -> None:
    tools: Any = [WEATHER_TOOL, TIME_TOOL]
    plain = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=USER, tools=tools)
    named = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=[{"role": "user", "content": "use get_time and get_weather"}],
        tools=tools,
    )
    single = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=[{"role": "user", "content": "use get_time and get_weather"}],
        tools=tools,
        parallel_tool_calls=False,
    )
    required = emulator_client.chat.completions.create(
        model="gpt-4o-deploy", messages=USER, tools=tools, tool_choice="required"
    )

    assert plain.choices[0].message.tool_calls is None
    assert [c.function.name for c in function_calls(named)] == ["get_weather", "get_time"]
    assert len(function_calls(single)) == 1
    assert [c.function.name for c in function_calls(required)] == ["get_weather"]


def test_tool_results_get_a_content_answer(emulator_client: AzureOpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "call get_time"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ]
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=messages,
        tools=[TIME_TOOL],
    )

    assert completion.choices[0].message.content == "Tool results received: 12:00"


def test_streamed_tool_call_arguments_reassemble(emulator_client: AzureOpenAI) -> None:
    stream = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=USER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    pieces: list[str] = []
    names: list[str] = []
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                if delta.function and delta.function.arguments:
                    pieces.append(delta.function.arguments)
            finish = choice.finish_reason or finish

    assert names == ["get_weather"] and finish == "tool_calls"
    assert len(pieces) > 2, "arguments should be split over several chunks"
    assert json.loads("".join(pieces))["unit"] == "celsius"


class Forecast(BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    highs: list[float]
    windy: bool


def test_json_schema_answer_parses_into_the_model(emulator_client: AzureOpenAI) -> None:
    completion = emulator_client.chat.completions.parse(model="gpt-4o-deploy", messages=USER, response_format=Forecast)

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and parsed.unit == "celsius" and len(parsed.highs) == 1


def test_json_object_answer_needs_json_in_messages(emulator_client: AzureOpenAI) -> None:
    ok = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=[{"role": "user", "content": "answer in json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(ok.choices[0].message.content or "") == {"reply": "You said: answer in json"}

    with pytest.raises(openai.BadRequestError) as caught:
        emulator_client.chat.completions.create(
            model="gpt-4o-deploy", messages=USER, response_format={"type": "json_object"}
        )
    assert caught.value.param == "messages"


@pytest.mark.parametrize("mode", ["invalid-json", "schema-violation"])
def test_broken_structured_output_on_request(emulator_client: AzureOpenAI, mode: str) -> None:
    schema = Forecast.model_json_schema()
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "forecast", "schema": schema}},
        extra_headers={"x-emulator-response": mode},
    )
    content = completion.choices[0].message.content or ""

    if mode == "invalid-json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    else:
        value = json.loads(content)
        assert isinstance(value, dict) and set(schema["required"]) - set(value)


def test_broken_tool_arguments_on_request(emulator_client: AzureOpenAI) -> None:
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=USER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        extra_headers={"x-emulator-response": "schema-violation"},
    )
    (call,) = function_calls(completion)

    assert "city" not in json.loads(call.function.arguments)


def test_fixed_content_header_and_scripted_responses(emulator_client: AzureOpenAI) -> None:
    fixed = "exactly this, with ünïcode"
    header = {"x-emulator-content": base64.b64encode(fixed.encode()).decode()}
    completion = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=USER, extra_headers=header)
    assert completion.choices[0].message.content == fixed

    answers = [
        emulator_client.chat.completions.create(model="scripted", messages=USER).choices[0].message.content
        for _ in range(3)
    ]
    assert answers == ["first", "second", "second"]


def test_prompt_marker_gets_azure_content_filter_error(emulator_client: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        emulator_client.chat.completions.create(
            model="gpt-4o-deploy", messages=[{"role": "user", "content": "bad [[content_filter]]"}]
        )

    error = caught.value
    assert error.status_code == 400 and error.code == "content_filter"
    assert isinstance(error.body, dict)
    inner = error.body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["violence"] == {"filtered": True, "severity": "high"}


def test_output_marker_filters_the_completion(emulator_client: AzureOpenAI) -> None:
    completion = emulator_client.chat.completions.create(
        model="gpt-4o-deploy", messages=[{"role": "user", "content": "[[content_filter:output]]"}]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter" and choice.message.content is None
    assert (choice.model_extra or {})["content_filter_results"]["violence"]["filtered"] is True


def test_v1_surface_takes_the_deployment_from_the_body(emulator_fresh: RunningEmulator) -> None:
    with OpenAI(base_url=f"{emulator_fresh.base_url}/openai/v1/", api_key=API_KEY, max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o-backup", messages=USER)

    assert completion.choices[0].message.content == "You said: What is the weather like?"
    assert emulator_fresh.requests_to("gpt-4o-backup") == 1


def test_path_prefix_of_an_api_management_front_is_ignored(emulator_http: httpx.Client) -> None:
    response = emulator_http.post(
        "/apim/team-a/openai/deployments/gpt-4o-deploy/chat/completions",
        params={"api-version": "2024-10-21"},
        json={"messages": USER},
    )

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].startswith("You said:")


def test_latency_delays_the_answer(emulator_client: AzureOpenAI) -> None:
    started = time.monotonic()
    emulator_client.chat.completions.create(model="slow-start", messages=USER)

    assert time.monotonic() - started >= 0.1


def test_chunk_interval_paces_the_stream(emulator_http: httpx.Client) -> None:
    started = time.monotonic()
    response = emulator_http.post(
        "/openai/deployments/slow-stream/chat/completions",
        params={"api-version": "2024-10-21"},
        json={"messages": USER, "stream": True},
    )
    elapsed = time.monotonic() - started

    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert elapsed >= 0.02 * (len(events) - 1) * 0.9
    assert response.headers["content-type"].startswith("text/event-stream")


def test_quote_properties_quote_the_tagged_text_verbatim(emulator_client: AzureOpenAI) -> None:
    """A grounded extraction's answer: each `quote` a passage of the text between the message's tags."""
    pair = {
        "type": "object",
        "properties": {"value": {"type": ["string", "null"]}, "quote": {"type": ["string", "null"]}},
        "required": ["value", "quote"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"name": pair, "items": {"type": "array", "items": pair}, "city": pair},
        "required": ["name", "items", "city"],
        "additionalProperties": False,
    }
    call = "Hi, this is Anna. I need two pumps for the plant in Boston, Massachusetts by the end of March please. Bye!"
    message = f"Extract the fields. Quote exactly.\n\n<transcript>\n{call}\n</transcript>"
    for kind in ("json_schema", "tool"):
        if kind == "json_schema":
            completion = emulator_client.chat.completions.create(
                model="gpt-4o-deploy",
                messages=[{"role": "user", "content": message}],
                response_format={"type": "json_schema", "json_schema": {"name": "f", "strict": True, "schema": schema}},
            )
            answer = json.loads(completion.choices[0].message.content or "")
        else:
            tool = {"type": "function", "function": {"name": "record", "parameters": schema}}
            completion = emulator_client.chat.completions.create(
                model="gpt-4o-deploy",
                messages=[{"role": "user", "content": message}],
                tools=[tool],  # type: ignore[list-item]
                tool_choice={"type": "function", "function": {"name": "record"}},
            )
            answer = json.loads(function_calls(completion)[0].function.arguments)
        quotes = [answer["name"]["quote"], answer["items"][0]["quote"], answer["city"]["quote"]]
        # Sentences in turn, at most 12 words each, never the instructions outside the tags.
        assert quotes == ["Hi, this is Anna.", "I need two pumps for the plant in Boston, Massachusetts by the", "Bye!"]
        assert all(quote in call for quote in quotes)
