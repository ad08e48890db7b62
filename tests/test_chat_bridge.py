"""The chat-completions bridge: the plain chat client against a deployment that answers only on Responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

from .conftest import EMULATOR_KEY, GatewayFactory
from .recorder import Recorder
from .servers import AsgiServer

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture
def bridged(start_gateway: GatewayFactory, emulator_server: AsgiServer) -> Iterator[OpenAI]:
    deployment = {
        "model": "o-responses",
        "deployment": "resp-only",
        "endpoint": emulator_server.url,
        "api": "responses",
    }
    gateway = start_gateway(deployments=[deployment])
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0) as sdk:
        yield sdk


def test_chat_answer_and_usage(bridged: OpenAI) -> None:
    result = bridged.chat.completions.create(
        model="o-responses",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        max_tokens=50,
    )
    assert result.object == "chat.completion"
    assert result.choices[0].message.content == "You said: Say hello"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


def test_tool_calls_and_results(bridged: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Use get_weather for Paris"}]
    first = bridged.chat.completions.create(model="o-responses", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "9C"},
    ]
    second = bridged.chat.completions.create(model="o-responses", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "Tool results received: 9C"


def test_streamed_text_tools_and_usage(bridged: OpenAI) -> None:
    chunks = list(
        bridged.chat.completions.create(
            model="o-responses",
            messages=[{"role": "user", "content": "Tell me a short story"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Tell me a short story"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    calls = list(
        bridged.chat.completions.create(
            model="o-responses",
            messages=[{"role": "user", "content": "Use get_weather for Oslo"}],
            tools=TOOLS,
            stream=True,
        )
    )
    arguments = "".join(
        d.function.arguments or ""
        for c in calls
        if c.choices
        for d in c.choices[0].delta.tool_calls or ()
        if d.function is not None
    )
    assert "city" in json.loads(arguments)
    assert [c.choices[0].finish_reason for c in calls if c.choices][-1] == "tool_calls"


def test_structured_output_and_the_request_sent(start_gateway: GatewayFactory) -> None:
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        deployment = {"model": "o-responses", "deployment": "resp-only", "endpoint": upstream.url, "api": "responses"}
        gateway = start_gateway(upstream.url, deployments=[deployment])
        schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
        with OpenAI(base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0) as sdk:
            sdk.chat.completions.with_raw_response.create(
                model="o-responses",
                messages=[{"role": "user", "content": "x"}],
                response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
                max_completion_tokens=9,
                tools=TOOLS,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            )
        seen = recorder.requests[-1]
        assert seen.path == "/openai/v1/responses"
        sent = json.loads(seen.body)
        assert sent["model"] == "resp-only" and sent["max_output_tokens"] == 9 and sent["store"] is False
        assert sent["text"] == {"format": {"type": "json_schema", "name": "s", "schema": schema}}
        assert sent["tools"][0]["name"] == "get_weather" and sent["tool_choice"] == {
            "type": "function",
            "name": "get_weather",
        }
        assert sent["input"] == [{"type": "message", "role": "user", "content": "x"}]
