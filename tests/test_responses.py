"""The Responses API through the gateway, with the official SDK against the emulator on real sockets.

Also: sticky routing of stored responses across two emulator instances and two gateways sharing one store (in
this process, and an `aoai-gateway serve` process),
keys-mode usage and ownership of response ids, and `api-version=preview` on a deployments-style upstream.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from openai import AzureOpenAI, OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.emulator import EmulatorSettings
from aoai_gateway.emulator import create_app as create_emulator
from aoai_gateway.store import usage_report

from .conftest import EMULATOR_KEY, GatewayFactory
from .recorder import Recorder
from .servers import AsgiServer, child_environ, eventually, free_port, wait_for_http

_OPEN: list[OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    # A client's pooled connection to a gateway that stopped would otherwise be found unclosed by the GC later.
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(gateway: AsgiServer, key: str = EMULATOR_KEY, base: str = "/v1") -> OpenAI:
    _OPEN.append(OpenAI(base_url=f"{gateway.url}{base}", api_key=key, max_retries=0))
    return _OPEN[-1]


@pytest.mark.parametrize("base", ["/v1", "/openai/v1/"])
def test_create_retrieve_input_items_delete(gateway: AsgiServer, base: str) -> None:
    sdk = client(gateway, base=base)
    created = sdk.responses.create(model="gpt-4o", input="Say hello", instructions="Be brief.")
    assert created.id.startswith("resp_") and created.output_text == "You said: Say hello"
    assert created.usage is not None and created.usage.input_tokens > 0 and created.usage.output_tokens > 0
    assert sdk.responses.retrieve(created.id).output_text == created.output_text
    items = list(sdk.responses.input_items.list(created.id))
    assert [item.type for item in items] == ["message"]
    sdk.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)


def test_streaming_events_pass_unchanged(gateway: AsgiServer) -> None:
    sdk = client(gateway)
    with sdk.responses.stream(model="gpt-4o", input="Tell me a short story") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in types and types[-1] == "response.completed"
    assert final.output_text == "You said: Tell me a short story"
    # The wire: typed `event:` lines, no `data: [DONE]` and nothing injected (no stream_options added upstream).
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/responses",
        json={"model": "gpt-4o", "input": "hi", "stream": True},
        headers={"authorization": f"Bearer {EMULATOR_KEY}"},
    ) as response:
        text = response.read().decode()
    assert text.startswith("event: response.created\ndata: ") and "[DONE]" not in text
    assert text.count("event: ") == text.count("data: ")


def test_function_tool_round_trip(gateway: AsgiServer) -> None:
    sdk = client(gateway)
    tools: Any = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    first = sdk.responses.create(model="gpt-4o", input="Use get_weather for Paris", tools=tools)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    second = sdk.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=tools,
    )
    assert second.output_text == "Tool results received: sunny"


def test_background_and_cancel(gateway: AsgiServer) -> None:
    sdk = client(gateway)
    queued = sdk.responses.create(model="gpt-4o", input="slow work", background=True)
    assert queued.status == "queued"
    assert sdk.responses.cancel(queued.id).status == "cancelled"
    done = sdk.responses.create(model="gpt-4o", input="more work", background=True)
    for _ in range(100):
        if sdk.responses.retrieve(done.id).status == "completed":
            break
        time.sleep(0.05)
    assert sdk.responses.retrieve(done.id).output_text == "You said: more work"


def test_azure_clients(gateway: AsgiServer) -> None:
    dated = AzureOpenAI(
        azure_endpoint=gateway.url, api_key=EMULATOR_KEY, api_version="2025-04-01-preview", max_retries=0
    )
    _OPEN.append(dated)
    created = dated.responses.create(model="gpt-4o", input="Azure says hi")
    assert created.output_text == "You said: Azure says hi"
    assert dated.responses.retrieve(created.id).id == created.id
    v1 = client(gateway, base="/openai/v1/")
    assert v1.responses.create(model="gpt-4o", input="v1").output_text == "You said: v1"
    missing = httpx.post(f"{gateway.url}/openai/responses", json={"model": "gpt-4o", "input": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "api-version"


@pytest.fixture
def two_resources() -> Iterator[tuple[AsgiServer, AsgiServer]]:
    settings = EmulatorSettings.model_validate({"api_keys": [EMULATOR_KEY], "auto_deployments": True})
    with AsgiServer(create_emulator(settings)) as east, AsgiServer(create_emulator(settings)) as west:
        yield east, west


def _two_resource_config(east: AsgiServer, west: AsgiServer, tmp_path: Path) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path),
        "routing": {"strategy": "weighted_round_robin"},
        "deployments": [
            {"model": "gpt-4o", "deployment": "east-4o", "endpoint": east.url},
            {"model": "gpt-4o", "deployment": "west-4o", "endpoint": west.url},
        ],
    }


def _two_resource_settings(east: AsgiServer, west: AsgiServer, tmp_path: Path) -> Settings:
    return Settings.model_validate(_two_resource_config(east, west, tmp_path))


def test_follow_ups_reach_the_resource_that_stored_the_response(
    two_resources: tuple[AsgiServer, AsgiServer], tmp_path: Path
) -> None:
    east, west = two_resources
    settings = _two_resource_settings(east, west, tmp_path)
    with AsgiServer(create_app(settings)) as first, AsgiServer(create_app(settings)) as second:
        for gateway in (first, second, first, second):
            # Round robin alternates between the resources: without stickiness half of these would 404.
            sdk = client(first)
            turn = sdk.responses.create(model="gpt-4o", input="first turn")
            other = client(gateway)  # the follow-up may come through another gateway sharing the store
            follow = other.responses.create(model="gpt-4o", input="second turn", previous_response_id=turn.id)
            assert follow.output_text == "You said: second turn"
            assert other.responses.retrieve(turn.id).id == turn.id
            assert [i.type for i in other.responses.input_items.list(follow.id)] == ["message"]
            with other.responses.stream(model="gpt-4o", input="third", previous_response_id=follow.id) as s:
                third = s.get_final_response()
            other.responses.delete(third.id)
    # The store is the gateway's database: one row per created response.
    assert (tmp_path / "gateway.db").exists()


@pytest.fixture
def gateway_process(two_resources: tuple[AsgiServer, AsgiServer], tmp_path: Path) -> Iterator[str]:
    """`aoai-gateway serve` in a process of its own, with the same configuration and data dir as the in-process
    gateways of these tests: only the store's rows can tell it where a response lives."""
    east, west = two_resources
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_two_resource_config(east, west, tmp_path)))
    port = free_port()
    log = tmp_path / "process.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=out,
            env=child_environ(),
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def test_follow_ups_through_another_gateway_process(
    two_resources: tuple[AsgiServer, AsgiServer], gateway_process: str, tmp_path: Path
) -> None:
    east, west = two_resources
    process = OpenAI(base_url=f"{gateway_process}/v1", api_key=EMULATOR_KEY, max_retries=0)
    _OPEN.append(process)
    with AsgiServer(create_app(_two_resource_settings(east, west, tmp_path))) as here:
        local = client(here)
        served_by: set[str] = set()
        for first, then in ((local, process), (process, local), (local, process), (process, local)):
            # Each gateway's round robin alternates between the resources: without the shared store's placement
            # half of these follow-ups would reach the resource that never saw the first turn, and 404.
            turn = first.responses.create(model="gpt-4o", input="first turn")
            follow = then.responses.create(model="gpt-4o", input="second turn", previous_response_id=turn.id)
            assert follow.output_text == "You said: second turn"
            assert follow.model == turn.model  # the deployment's name: the same resource answered
            served_by.add(turn.model)
            assert then.responses.retrieve(turn.id).model == turn.model
            then.responses.delete(follow.id)
        assert served_by == {"east-4o", "west-4o"}  # both resources stored first turns


def test_an_unknown_id_goes_through_normal_routing(
    two_resources: tuple[AsgiServer, AsgiServer], tmp_path: Path
) -> None:
    east, west = two_resources
    gateway = AsgiServer(create_app(_two_resource_settings(east, west, tmp_path)))
    with gateway, pytest.raises(openai.NotFoundError):
        client(gateway).responses.retrieve("resp_neverseen")


async def test_keys_mode_usage_caps_and_ownership(keyed: Any) -> None:
    start, keys, db, _ = keyed
    gateway = start()
    alice, bob = await keys.make(max_tokens=40), await keys.make()
    sdk = client(gateway, alice)
    created = sdk.responses.create(model="gpt-4o", input="one two three")
    assert created.max_output_tokens == 40  # inserted: the cap bounds what is generated
    with sdk.responses.stream(model="gpt-4o", input="four five six") as stream:
        assert stream.get_final_response().usage is not None
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model="gpt-4o", input="x", max_output_tokens=41)
    # Another key cannot see, continue or delete alice's response; an id never created here is unknown too.
    other = client(gateway, bob)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as refused:
        other.responses.create(model="gpt-4o", input="steal", previous_response_id=created.id)
    assert refused.value.body["param"] == "previous_response_id"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    assert sdk.responses.retrieve(created.id).id == created.id
    rows = await eventually(
        lambda: usage_report(db, by="key"),
        lambda rows: any(row["requests"] >= 2 and row["completion_tokens"] > 0 for row in rows),
    )
    mine = next(row for row in rows if row["requests"] >= 2 and row["completion_tokens"] > 0)
    assert mine["prompt_tokens"] > 0


def test_preview_api_version_goes_dated_to_deployment_routes(start_gateway: GatewayFactory) -> None:
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        gateway = start_gateway(upstream.url)
        sdk = client(gateway, base="/openai/v1/").with_options(default_query={"api-version": "preview"})
        sdk.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "hi"}])
        seen = recorder.requests[-1]
        assert seen.path.endswith("/openai/deployments/chat-4o/chat/completions")
        assert seen.query == "api-version=2024-10-21"
        # A dated client version is still the client's choice; on a v1 upstream `preview` is kept.
        sdk.with_options(default_query={"api-version": "2025-01-01-preview"}).chat.completions.create(
            model="chat-4o", messages=[{"role": "user", "content": "hi"}]
        )
        assert recorder.requests[-1].query == "api-version=2025-01-01-preview"
        sdk.chat.completions.create(model="chat-v1", messages=[{"role": "user", "content": "hi"}])
        assert recorder.requests[-1].path == "/openai/v1/chat/completions"
        assert recorder.requests[-1].query == "api-version=preview"
        sdk.responses.create(model="gpt-4o", input="hi")
        assert recorder.requests[-1].path == "/apim/team/openai/v1/responses"
        assert b'"model":"chat-4o"' in recorder.requests[-1].body


def test_langchain_use_responses_api(gateway: AsgiServer) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model="gpt-4o", base_url=f"{gateway.url}/v1", api_key=EMULATOR_KEY, use_responses_api=True, max_retries=0
    )
    answer = chat.invoke("Hello from LangChain")
    assert answer.text == "You said: Hello from LangChain"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
    streamed = "".join(chunk.text for chunk in chat.stream("stream it"))
    assert streamed == "You said: stream it"
