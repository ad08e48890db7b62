"""The OpenAI Agents SDK through the gateway, against the emulator on real sockets.

An agent with a function tool, on the SDK's default model API (Responses) and on its chat-completions model, each
run once whole and once streamed. The SDK's tracing is switched off: it would export to OpenAI's servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from .conftest import EMULATOR_KEY
from .servers import AsgiServer

set_tracing_disabled(True)  # before any run: nothing may be sent to api.openai.com


@pytest.fixture
async def sdk(gateway: AsgiServer) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, max_retries=0)
    yield client
    await client.close()


def weather_agent(asked: list[str], model: str | OpenAIChatCompletionsModel = "gpt-4o") -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: the city's name.
        """
        asked.append(city)
        return f"sunny in {city}"

    return Agent(name="forecaster", instructions="Answer with the tool's result.", model=model, tools=[get_weather])


def config(sdk: AsyncOpenAI) -> RunConfig:
    # The SDK's own provider with our client: its default API (Responses) is what is tested.
    return RunConfig(model_provider=OpenAIProvider(openai_client=sdk), tracing_disabled=True)


async def test_agent_calls_a_tool_and_answers_with_its_result(sdk: AsyncOpenAI) -> None:
    asked: list[str] = []
    result = await Runner.run(weather_agent(asked), "Use get_weather for Paris", run_config=config(sdk))
    assert len(asked) == 1  # the emulated model fills the arguments from the schema
    assert result.final_output == f"Tool results received: sunny in {asked[0]}"
    # Two model calls: the tool call, then the answer; both were Responses (resp_ ids) with usage.
    assert [r.response_id is not None and r.response_id.startswith("resp_") for r in result.raw_responses] == [
        True,
        True,
    ]
    assert all(r.usage.output_tokens > 0 for r in result.raw_responses)


async def test_agent_streamed(sdk: AsyncOpenAI) -> None:
    asked: list[str] = []
    run = Runner.run_streamed(weather_agent(asked), "Use get_weather for Lyon", run_config=config(sdk))
    deltas = [
        event.data.delta
        async for event in run.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert len(asked) == 1
    assert run.final_output == f"Tool results received: sunny in {asked[0]}"
    assert len(deltas) > 1 and "".join(deltas) == run.final_output


async def test_agent_on_the_chat_completions_model(sdk: AsyncOpenAI) -> None:
    asked: list[str] = []
    agent = weather_agent(asked, OpenAIChatCompletionsModel(model="gpt-4o", openai_client=sdk))
    result = await Runner.run(agent, "Use get_weather for Oslo", run_config=RunConfig(tracing_disabled=True))
    assert len(asked) == 1
    assert result.final_output == f"Tool results received: sunny in {asked[0]}"
    streamed = Runner.run_streamed(agent, "Use get_weather for Rome", run_config=RunConfig(tracing_disabled=True))
    async for _ in streamed.stream_events():
        pass
    assert len(asked) == 2 and streamed.final_output == f"Tool results received: sunny in {asked[1]}"
