"""Scripted tool-call turns (`/_emulator/script`), read back through the official SDK, whole and streamed."""

from __future__ import annotations

import json
from typing import Any

from openai import AzureOpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from .support import RunningEmulator

LIGHT: Any = {
    "type": "function",
    "function": {
        "name": "set_light",
        "parameters": {
            "type": "object",
            "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
            "required": ["room", "on"],
        },
    },
}
ASK: Any = [{"role": "user", "content": "turn on the kitchen and hall lights"}]
PARALLEL = {
    "tool_calls": [
        {"name": "set_light", "arguments": {"room": "kitchen", "on": True}, "id": "call_kitchen"},
        {"name": "set_light", "arguments": {"room": "hall", "on": True}},
    ]
}


def script(emulator: RunningEmulator, *turns: dict[str, Any], deployment: str = "gpt-4o-deploy") -> None:
    emulator.control("POST", "script", json={"deployment": deployment, "turns": list(turns)})


def test_parallel_tool_calls_then_the_final_text(emulator_client: AzureOpenAI, emulator_fresh: RunningEmulator) -> None:
    script(emulator_fresh, PARALLEL, {"content": "Both lights are on."})

    first = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=ASK, tools=[LIGHT])
    calls = [
        c for c in first.choices[0].message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("set_light", {"room": "kitchen", "on": True}),
        ("set_light", {"room": "hall", "on": True}),
    ]
    assert calls[0].id == "call_kitchen" and calls[1].id.startswith("call_") and calls[1].id != calls[0].id

    results: Any = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in calls),
    ]
    second = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=results, tools=[LIGHT])
    assert second.choices[0].message.content == "Both lights are on."
    assert second.choices[0].finish_reason == "stop"

    # The script is used up: the deployment answers as it always did.
    third = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=ASK)
    assert third.choices[0].message.content == "You said: turn on the kitchen and hall lights"
    assert emulator_fresh.control("GET", "script") == {}


def test_streamed_turns_assemble_in_the_sdk(emulator_client: AzureOpenAI, emulator_fresh: RunningEmulator) -> None:
    long_room = "the small guest room next to the attic stairs"
    script(
        emulator_fresh,
        {
            "content": "Let me do that.",
            "tool_calls": [{"name": "set_light", "arguments": {"room": long_room, "on": False}}],
        },
        {"content": "Done: the light is off."},
    )
    with emulator_client.chat.completions.stream(model="gpt-4o-deploy", messages=ASK, tools=[LIGHT]) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me do that."
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert json.loads(call.function.arguments) == {"room": long_room, "on": False}
    assert final.choices[0].finish_reason == "tool_calls"

    pieces = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=ASK, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)
    assert text == "Done: the light is off."


def test_scripts_are_per_deployment_append_and_reset(
    emulator_client: AzureOpenAI, emulator_fresh: RunningEmulator
) -> None:
    script(emulator_fresh, {"content": "one"}, deployment="gpt-4o-backup")
    emulator_fresh.control(
        "POST", "script", json={"deployment": "gpt-4o-backup", "turns": [{"content": "two"}], "append": True}
    )
    other = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=ASK)
    assert other.choices[0].message.content == "You said: turn on the kitchen and hall lights"
    assert emulator_fresh.control("GET", "script") == {"gpt-4o-backup": [{"content": "one"}, {"content": "two"}]}
    emulator_fresh.control("POST", "reset")
    assert emulator_fresh.control("GET", "script") == {}


def test_arguments_that_are_not_json_reach_the_client_as_sent(
    emulator_client: AzureOpenAI, emulator_fresh: RunningEmulator
) -> None:
    script(emulator_fresh, {"tool_calls": [{"name": "no_such_tool", "arguments": '{"room": "kit'}]})
    answer = emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=ASK, tools=[LIGHT])
    call = (answer.choices[0].message.tool_calls or [])[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.function.name, call.function.arguments) == ("no_such_tool", '{"room": "kit')


def test_a_malformed_script_is_refused_with_an_openai_error(emulator_fresh: RunningEmulator) -> None:
    bad_bodies: list[Any] = [
        {"deployment": "gpt-4o-deploy", "turns": [{}]},
        {"deployment": "gpt-4o-deploy", "turns": [{"tool_calls": [{"name": ""}]}]},
        {"deployment": "", "turns": []},
        {"deployment": "gpt-4o-deploy", "turns": [{"content": "x", "extra": 1}]},
        {"deployment": "gpt-4o-deploy", "turns": [{"content": "x"}] * 10_001},
        ["not", "an", "object"],
    ]
    for body in bad_bodies:
        response = emulator_fresh.http.post("/_emulator/script", json=body)
        assert response.status_code == 400, body
        assert set(response.json()["error"]) >= {"message", "type", "param", "code"}
    broken = emulator_fresh.http.post("/_emulator/script", content=b"{not json")
    assert broken.status_code == 400
    assert emulator_fresh.control("GET", "script") == {}

    full = {"deployment": "gpt-4o-deploy", "turns": [{"content": "x"}] * 10_000}
    assert emulator_fresh.http.post("/_emulator/script", json=full).status_code == 200
    more = emulator_fresh.http.post("/_emulator/script", json={**full, "turns": [{"content": "y"}], "append": True})
    assert more.status_code == 400 and "at most 10000" in more.json()["error"]["message"]
