"""Typed turns end to end: the gateway's assistant, in-process model calls to the emulator's scripted answers,
the simulated home's state, parallel calls, rounds, streaming events, sessions."""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

import pytest

from aoai_gateway.assistant.speaker import JOINABLE, join_audio

from ..servers import lifespan_done, whole_body
from .conftest import AssistantClient, ClientFactory, Script, light_call


def test_a_command_changes_the_home_and_the_reply_comes_back(assistant: AssistantClient, script: Script) -> None:
    assistant.reset_home()
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "The kitchen light is on."})
    session = assistant.session()

    turn = assistant.turn(session, text="turn on the kitchen lights")

    assert turn["transcript"] == "turn on the kitchen lights"
    assert turn["reply"] == "The kitchen light is on."
    assert turn["rounds"] == 2
    [call] = turn["tool_calls"]
    assert call["name"] == "set_light" and call["ok"] is True
    assert call["result"] == {"kitchen": {"on": True, "brightness": 100, "color": "warm white"}}
    home = assistant.home()
    assert home["lights"]["kitchen"]["on"] is True
    assert home["lights"]["bedroom"]["on"] is False
    assert turn["usage"]["prompt_tokens"] > 0 and turn["audio"] is None

    # The conversation is kept: the user's words, the call, its result, the answer.
    kept = assistant.http.get(f"/sessions/{session}").json()["messages"]
    assert [m["role"] for m in kept] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(kept[2]["content"])["result"]["kitchen"]["on"] is True


def test_parallel_calls_and_several_rounds(assistant: AssistantClient, script: Script) -> None:
    assistant.reset_home()
    script(
        {"tool_calls": [light_call("kitchen", on=True, color="blue"), light_call("office", brightness=30)]},
        {"tool_calls": [{"name": "set_washing_machine", "arguments": {"action": "start", "program": "wool"}}]},
        {"content": "Done."},
    )
    turn = assistant.turn(assistant.session(), text="blue kitchen, dim office, and start a wool wash")
    assert turn["rounds"] == 3 and turn["reply"] == "Done."
    assert [c["name"] for c in turn["tool_calls"]] == ["set_light", "set_light", "set_washing_machine"]
    home = assistant.home()
    assert home["lights"]["kitchen"] == {"on": True, "brightness": 100, "color": "blue"}
    assert home["lights"]["office"] == {"on": True, "brightness": 30, "color": "warm white"}
    assert home["washing_machine"]["running"] is True and home["washing_machine"]["program"] == "wool"
    assert assistant.reset_home()["washing_machine"]["running"] is False


def test_the_stream_tells_each_stage_in_order(assistant: AssistantClient, script: Script) -> None:
    script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"location": "Paris"}}, {"name": "get_time"}]},
        {"content": "It is partly cloudy and 14 degrees in Paris."},
    )
    events = assistant.stream(assistant.session(), text="what's the weather in Paris", speech=True)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "transcript"
    assert kinds[1:3] == ["tool_call", "tool_call"]
    assert kinds[3:5] == ["tool_result", "tool_result"]
    assert "reply_delta" in kinds
    assert kinds[-3:] == ["reply", "audio", "done"]
    data = dict(events)
    assert data["tool_result"]["ok"] is True
    weather = next(d for k, d in events if k == "tool_result" and d["name"] == "get_weather")
    assert weather["result"]["summary"] == "partly cloudy" and weather["result"]["temperature"] == 14
    deltas = "".join(d["text"] for k, d in events if k == "reply_delta")
    assert deltas == data["reply"]["text"] == "It is partly cloudy and 14 degrees in Paris."
    audio = base64.b64decode(data["audio"]["data"])
    assert audio[:4] == b"RIFF" and data["audio"]["format"] == "wav"
    assert data["done"]["reply"] == deltas and data["done"]["audio"] is None


def test_the_round_limit_ends_a_turn_that_keeps_calling_tools(assistant_with: ClientFactory, script: Script) -> None:
    client = assistant_with(max_rounds=2)
    script({"tool_calls": [{"name": "get_time"}]}, {"tool_calls": [{"name": "get_time"}]})
    session = client.session()
    turn = client.turn(session, text="what time is it")
    assert turn["rounds"] == 2
    assert turn["reply"] == "Sorry, I could not finish that."
    assert turn["tool_calls"][0]["ok"] is True
    assert "limit of 2 model calls" in turn["tool_calls"][1]["error"]
    # The conversation stays well formed: every call has its result, so the next turn can go on.
    script({"content": "Hello again."})
    assert client.turn(session, text="hello")["reply"] == "Hello again."


def test_sessions_are_bounded_and_can_be_deleted(assistant_with: ClientFactory, script: Script) -> None:
    client = assistant_with(max_messages=4)
    session = client.session()
    for number in range(4):
        script({"tool_calls": [{"name": "get_time"}]}, {"content": f"answer {number}"})
        client.turn(session, text=f"question {number}")
    kept = client.http.get(f"/sessions/{session}").json()["messages"]
    assert len(kept) <= 4 and kept[0]["role"] == "user" and kept[0]["content"] == "question 3"
    assert client.http.delete(f"/sessions/{session}").status_code == 200
    gone = client.http.get(f"/sessions/{session}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


def test_a_streamed_reply_is_spoken_sentence_by_sentence(assistant: AssistantClient, script: Script) -> None:
    script({"content": "The kitchen light is on. The door is locked!\nIt is 3.5 degrees outside"})
    events = assistant.stream(assistant.session(), text="status", speech=True)
    audio = [data for kind, data in events if kind == "audio"]
    assert [(a["index"], a["text"]) for a in audio] == [
        (0, "The kitchen light is on."),
        (1, "The door is locked!"),
        (2, "It is 3.5 degrees outside"),
    ]
    assert all(base64.b64decode(a["data"])[:4] == b"RIFF" for a in audio)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and kinds.index("reply") < len(kinds) - 2  # the last sentence after the reply
    # Without a stream too, each sentence is spoken as soon as it is written, and the parts come back as one file:
    # the emulator's voice speaks at least 0.5 s per call, so "One." and "Two." apart are 1 s, "One. Two." 0.5 s.
    script({"content": "One. Two."})
    whole = assistant.turn(assistant.session(), text="count", speech=True)
    with wave.open(io.BytesIO(base64.b64decode(whole["audio"]["data"]))) as joined:
        assert joined.getnframes() == joined.getframerate() * 1.0
    assert whole["audio"]["format"] == "wav"


def test_sentence_files_join_into_one_only_when_they_match() -> None:
    def tone(rate: int, frames: int) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(rate)
            writer.writeframes(b"\x01\x00" * frames)
        return out.getvalue()

    with wave.open(io.BytesIO(join_audio("wav", [tone(16000, 100), tone(16000, 50)]))) as joined:
        assert (joined.getframerate(), joined.getnframes()) == (16000, 150)
    with pytest.raises(ValueError):  # the turn then speaks the reply whole
        join_audio("wav", [tone(16000, 100), tone(22050, 50)])
    assert join_audio("mp3", [b"\xff\xfb1", b"\xff\xfb2"]) == b"\xff\xfb1\xff\xfb2"
    assert "flac" not in JOINABLE and "opus" not in JOINABLE


class WholeAnswers:
    """An OpenAI-compatible server that ignores `stream` and answers whole JSON: a tool call, then text."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await lifespan_done(scope, receive, send):
            return
        body = await whole_body(receive)
        self.bodies.append(json.loads(body))
        if len(self.bodies) % 2:
            call = {"id": "c1", "type": "function", "function": {"name": "get_doors", "arguments": "{}"}}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": "All doors are locked."}, "stop"
        answer = {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def test_a_server_that_does_not_stream_still_works(start_gateway: Any, assistant_with: ClientFactory) -> None:
    from ..servers import AsgiServer
    from .conftest import assistant_settings

    upstream = WholeAnswers()
    with AsgiServer(upstream) as server:
        deployments = [{"model": "local-llm", "provider": "openai", "endpoint": server.url, "api_key": "k"}]
        gateway = start_gateway(
            deployments=deployments, assistant=assistant_settings(chat_model="local-llm", speech_model=None)
        )
        client = assistant_with(gateway=gateway)
        turn = client.turn(client.session(), text="are the doors locked?")
    assert turn["reply"] == "All doors are locked." and turn["tool_calls"][0]["name"] == "get_doors"
    assert turn["usage"] == {"prompt_tokens": 20, "completion_tokens": 10}
    assert upstream.bodies[0]["stream"] is True and upstream.bodies[1]["messages"][-1]["role"] == "tool"


def test_tool_names_and_schemas_are_checked_at_start() -> None:
    import pytest

    from aoai_gateway.assistant.home import SimulatedHome
    from aoai_gateway.assistant.tools import ToolRegistry, ToolSpec
    from aoai_gateway.config import ConfigError

    home = SimulatedHome().tools()
    with pytest.raises(ConfigError, match="two assistant tools are named 'set_light'"):
        ToolRegistry([*home, home[0]])

    class Broken:
        spec = ToolSpec("broken", "", {"type": "object", "properties": {"x": {"type": "nonsense"}}}, source="mcp:x")

        async def run(self, arguments: dict[str, Any]) -> Any:
            return None

    with pytest.raises(ConfigError, match="'broken' \\(mcp:x\\): its parameters are not a valid JSON Schema"):
        ToolRegistry([Broken()])


def test_persist_sessions_keeps_them_in_the_database_without_keys(
    tmp_path: Any, start_gateway: Any, assistant_with: ClientFactory, script: Script
) -> None:
    from .conftest import assistant_settings

    def gateway() -> Any:
        return start_gateway(data_dir=str(tmp_path), assistant=assistant_settings(persist_sessions=True))

    first = assistant_with(gateway=gateway())
    session = first.session()
    script({"content": "Noted."})
    first.turn(session, text="remember the milk")
    assert (tmp_path / "gateway.db").exists()
    restarted = gateway()  # another gateway on the same database
    again = assistant_with(gateway=restarted)
    kept = again.http.get(f"/sessions/{session}").json()["messages"]
    assert [m["content"] for m in kept] == ["remember the milk", "Noted."]
    stranger = assistant_with(gateway=restarted, key="another-upstream-key")  # passthrough: owned by the key
    assert stranger.http.get(f"/sessions/{session}").status_code == 404
