"""Tools from config and their failures: webhooks against a recording server, schema violations, timeouts,
the confirmation flow, and keys whose allowlist does or does not name tools."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..servers import AsgiServer
from .conftest import AssistantClient, ClientFactory, Script, light_call
from .hooks import Hooks

LIGHT_SCHEMA = {
    "type": "object",
    "properties": {"scene": {"type": "string", "enum": ["movie", "dinner"]}, "level": {"type": "integer"}},
    "required": ["scene"],
    "additionalProperties": False,
}


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, AsgiServer]]:
    recorder = Hooks()
    with AsgiServer(recorder) as server:
        yield recorder, server


def webhooks(base: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "set_scene",
            "description": "Set a lighting scene.",
            "parameters": LIGHT_SCHEMA,
            "url": f"{base}/lights",
            "headers_from_env": {"x-hook-token": "HOOK_TOKEN"},
        },
        {
            "name": "search_recipes",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}},
            "url": f"{base}/search",
            "method": "GET",
        },
        {"name": "broken_hook", "url": f"{base}/broken"},
        {"name": "slow_hook", "url": f"{base}/hang", "timeout_s": 0.5},
    ]


def test_webhook_tools_send_the_arguments_and_the_configured_secret(
    assistant_with: ClientFactory, script: Script, hooks: tuple[Hooks, AsgiServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, server = hooks
    monkeypatch.setenv("HOOK_TOKEN", "s3cret-token")
    client = assistant_with(webhooks=webhooks(server.url))
    script(
        {
            "tool_calls": [
                {"name": "set_scene", "arguments": {"scene": "movie", "level": 2}},
                {"name": "search_recipes", "arguments": {"q": "soup & bread", "n": 3}},
            ]
        },
        {"content": "Movie scene on; I found soup recipes."},
    )
    turn = client.turn(client.session(), text="movie time, and find me a soup")

    assert turn["reply"] == "Movie scene on; I found soup recipes."
    scene, search = turn["tool_calls"]
    assert scene["ok"] and scene["result"] == {"done": True, "got": {"scene": "movie", "level": 2}}
    assert search["ok"] and search["result"] == "results for q=soup+%26+bread&n=3"
    posted = next(r for r in recorder.requests if r.path == "/lights")
    assert posted.method == "POST" and posted.headers["x-hook-token"] == "s3cret-token"
    assert posted.headers["content-type"] == "application/json"
    got = next(r for r in recorder.requests if r.path == "/search")
    assert got.method == "GET" and got.body == b"" and "x-hook-token" not in got.headers
    listed = {tool["name"]: tool for tool in client.http.get("/tools").json()["data"]}
    assert listed["set_scene"]["source"] == "webhook" and listed["set_light"]["source"] == "home"


def test_errors_timeouts_and_bad_arguments_go_back_to_the_model(
    assistant_with: ClientFactory, script: Script, hooks: tuple[Hooks, AsgiServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = hooks
    monkeypatch.setenv("HOOK_TOKEN", "t")
    client = assistant_with(webhooks=webhooks(server.url))
    client.reset_home()
    script(
        {
            "tool_calls": [
                {"name": "broken_hook"},
                {"name": "slow_hook"},
                {"name": "set_scene", "arguments": {"scene": "disco"}},  # not in the enum
                {"name": "set_scene", "arguments": {"scene": "movie", "extra": 1}},
                light_call("moon", on=True),  # no such room
                {"name": "set_light", "arguments": '{"room": "kitch'},  # not JSON
                {"name": "rm_rf", "arguments": {}},  # no such tool
                {"name": "set_light", "arguments": '["kitchen"]'},  # JSON, not an object
            ]
        },
        {"content": "Some of that did not work."},
    )
    turn = client.turn(client.session(), text="do all the things")

    assert turn["reply"] == "Some of that did not work."
    errors = [call["error"] for call in turn["tool_calls"]]
    assert all(not call["ok"] for call in turn["tool_calls"])
    assert errors[0].startswith("The service answered HTTP 500")
    assert errors[1] == "The tool timed out after 0.5 s."
    assert "disco" in errors[2] and errors[2].startswith("Invalid arguments at scene")
    assert "extra" in errors[3]
    assert errors[4].startswith("Invalid arguments at room")
    assert "not valid JSON" in errors[5]
    assert errors[6].startswith("There is no tool named 'rm_rf'")
    assert "JSON object" in errors[7]
    assert client.home()["lights"]["kitchen"]["on"] is False


def test_unlocking_waits_for_the_users_yes(assistant: AssistantClient, script: Script) -> None:
    assistant.reset_home()
    session = assistant.session()
    unlock = {"tool_calls": [{"name": "unlock_door", "arguments": {"door": "front door"}, "id": "call_unlock"}]}
    script(unlock, {"content": "Shall I unlock the front door?"})

    events = assistant.stream(session, text="unlock the front door")
    kinds = [kind for kind, _ in events]
    assert "confirmation_required" in kinds
    assert dict(events)["confirmation_required"]["arguments"] == {"door": "front door"}
    assert assistant.home()["doors"]["front door"]["locked"] is True
    pending = assistant.http.get(f"/sessions/{session}").json()["pending_confirmation"]
    assert pending == {"id": "call_unlock", "name": "unlock_door", "arguments": {"door": "front door"}}

    script({"content": "The front door is unlocked."})
    turn = assistant.turn(session, text="yes please")
    assert turn["tool_calls"][0]["name"] == "unlock_door" and turn["tool_calls"][0]["ok"]
    assert assistant.home()["doors"]["front door"]["locked"] is False
    assert turn["pending_confirmation"] is None
    # A yes without anything pending does nothing special.
    script({"content": "Yes what?"})
    assert assistant.turn(session, text="yes")["tool_calls"] == []


def test_anything_but_a_yes_cancels_the_pending_action(assistant: AssistantClient, script: Script) -> None:
    assistant.reset_home()
    session = assistant.session()
    script({"tool_calls": [{"name": "unlock_door", "arguments": {"door": "back door"}}]}, {"content": "Sure?"})
    assistant.turn(session, text="unlock the back door")
    script({"content": "OK, I left it locked."})
    turn = assistant.turn(session, text="no, don't")
    assert turn["tool_calls"][0]["error"] == "The user did not confirm, so it was not done."
    assert assistant.home()["doors"]["back door"]["locked"] is True
    # An explicit `confirm: false` wins over words that sound like yes.
    script({"tool_calls": [{"name": "unlock_door", "arguments": {"door": "back door"}}]}, {"content": "Sure?"})
    assistant.turn(session, text="unlock the back door")
    script({"content": "Left locked."})
    assistant.turn(session, text="yes", confirm=False)
    assert assistant.home()["doors"]["back door"]["locked"] is True


async def test_a_key_uses_only_the_tools_its_allowlist_names(keyed: Any, script: Script) -> None:
    from .conftest import assistant_settings

    start, keys, _, _ = keyed
    gateway = start(assistant=assistant_settings(speech_model=None))
    no_tools = AssistantClient(gateway, await keys.make(models=("gpt-4o",)))
    readers = AssistantClient(gateway, await keys.make(models=("gpt-4o", "tool:get_*")))
    everything = AssistantClient(gateway, await keys.make())
    try:
        assert no_tools.http.get("/tools").json()["data"] == []
        assert {t["name"] for t in readers.http.get("/tools").json()["data"]} == {
            "get_lights",
            "get_washing_machine",
            "get_doors",
            "get_weather",
            "get_time",
        }
        refused = no_tools.http.get("/home")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "tool_not_allowed"
        everything.reset_home()

        # The model is not offered the tool, and a call to it all the same is refused, never run.
        script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "I cannot do that."})
        turn = no_tools.turn(no_tools.session(), text="kitchen lights on")
        assert turn["tool_calls"][0]["error"].startswith("There is no tool named 'set_light'; the tools are: none")
        script({"tool_calls": [light_call("kitchen", on=True), {"name": "get_time"}]}, {"content": "Half done."})
        turn = readers.turn(readers.session(), text="kitchen lights on, and the time")
        assert [c["ok"] for c in turn["tool_calls"]] == [False, True]
        assert everything.home()["lights"]["kitchen"]["on"] is False

        # A key without the chat model is refused by the gateway's own allowlist, as for any client.
        no_model = AssistantClient(gateway, await keys.make(models=("tool:*",)))
        denied = no_model.http.post(f"/sessions/{no_model.session()}/turns", json={"text": "hi"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "model_not_allowed"
        no_model.http.close()
    finally:
        for client in (no_tools, readers, everything):
            client.http.close()


async def test_sessions_belong_to_their_key_and_survive_a_restart(keyed: Any, script: Script) -> None:
    from .conftest import assistant_settings

    start, keys, _, _ = keyed
    settings = assistant_settings(speech_model=None)
    owner_key, other_key = await keys.make(), await keys.make()
    first = start(assistant=settings)
    owner = AssistantClient(first, owner_key)
    session = owner.session()
    script({"content": "Noted."})
    owner.turn(session, text="remember the milk")
    other = AssistantClient(first, other_key)
    assert other.http.get(f"/sessions/{session}").status_code == 404
    assert other.http.post(f"/sessions/{session}/turns", json={"text": "hi"}).status_code == 404
    assert other.http.delete(f"/sessions/{session}").status_code == 404
    anonymous = httpx.post(f"{first.url}/v1/assistant/sessions", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"

    second = start(assistant=settings)  # another gateway on the same database: a restart
    again = AssistantClient(second, owner_key)
    kept = again.http.get(f"/sessions/{session}").json()
    assert [m["content"] for m in kept["messages"]] == ["remember the milk", "Noted."]
    for client in (owner, other, again):
        client.http.close()


async def test_model_calls_are_booked_to_the_callers_key(keyed: Any, script: Script) -> None:
    from .conftest import assistant_settings

    start, keys, db, _ = keyed
    gateway = start(assistant=assistant_settings(speech_model=None))
    secret = await keys.make()
    key = await keys.store.by_secret(secret)
    client = AssistantClient(gateway, secret)
    script({"tool_calls": [{"name": "get_time"}]}, {"content": "It is noon."})
    client.turn(client.session(), text="what time is it")
    client.http.close()

    async def booked() -> list[Any]:
        query = "SELECT route, model, status, prompt_tokens FROM usage WHERE key_id = ? AND route = ?"
        return await db.fetch(query, [key.id, "/v1/chat/completions"])

    for _ in range(600):  # the ledger is written in the background (access.usage_flush_seconds)
        rows = await booked()
        if len(rows) == 2:
            break
        await asyncio.sleep(0.05)
    assert [(r["model"], r["status"]) for r in rows] == [("gpt-4o", 200), ("gpt-4o", 200)]
    assert all(r["prompt_tokens"] > 0 for r in rows)


def test_the_models_fail_over_like_any_request(
    start_gateway: Any, emulator_server: AsgiServer, script: Script, assistant_with: ClientFactory
) -> None:
    from .conftest import assistant_settings

    deployments = [
        {"model": "gpt-4o", "deployment": "chat-broken", "endpoint": emulator_server.url, "priority": 0},
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": emulator_server.url, "priority": 1},
    ]
    control = httpx.Client(base_url=f"{emulator_server.url}/_emulator", timeout=10)
    control.post("/faults", json={"deployment": "chat-broken", "faults": [{"kind": "503"}]}).raise_for_status()
    try:
        gateway = start_gateway(deployments=deployments, assistant=assistant_settings(speech_model=None))
        client = assistant_with(gateway=gateway)
        script({"content": "Served by the backup."})
        assert client.turn(client.session(), text="hello")["reply"] == "Served by the backup."
        assert control.get("/stats").json()["deployments"]["chat-broken"]["statuses"].get("503", 0) >= 1
    finally:
        control.delete("/faults")
        control.close()
