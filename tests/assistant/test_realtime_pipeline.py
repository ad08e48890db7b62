"""The Realtime API served in-process for a `provider: pipeline` deployment, on real sockets: the `openai` SDK's
realtime client (and a raw `websockets` client for hostile frames) -> the gateway -> server VAD -> local Whisper
(the bundled tiny.en) -> the emulator's scripted chat answers and function calls -> the local eSpeak NG voice,
whose audio is transcribed back to the reply's words."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.beta.realtime import RealtimeServerEvent as BetaRealtimeServerEvent
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aoai_gateway.app import create_app

from ..conftest import EMULATOR_KEY, gateway_settings
from ..servers import AsgiServer
from .conftest import Script, light_call
from .test_spoken import transcribe, words

AUDIO = Path(__file__).parent / "audio"
RATE = 24_000
AGENT = "voice-agent"
LIGHT_TOOL = {
    "type": "function",
    "name": "set_light",
    "description": "Switch a room's light",
    "parameters": {
        "type": "object",
        "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
        "required": ["room"],
    },
}


@pytest.fixture(scope="module")
def voice_gateway(emulator_server: AsgiServer) -> Iterator[AsgiServer]:
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": f"{emulator_server.url}/apim/team"},
        {"model": "whisper-local", "provider": "local"},
        {"model": "tts-local", "provider": "local", "engine": "espeak-ng"},
        {
            "model": AGENT,
            "provider": "pipeline",
            "pipeline": {
                "transcription_model": "whisper-local",
                "chat_model": "gpt-4o",
                "speech_model": "tts-local",
                "instructions": "You run a home.",
                "max_turn_seconds": 10,
            },
        },
    ]
    settings = gateway_settings(emulator_server.url, deployments=deployments, realtime={"max_frame_bytes": 1 << 20})
    with AsgiServer(create_app(settings), settings.server, ws_max_size=settings.realtime.max_frame_bytes) as server:
        yield server


def pcm24k(name: str, silence_before: float = 0.3, silence_after: float = 1.2) -> bytes:
    """A committed espeak-ng WAV as pcm16 at 24 kHz, padded with silence (resampled here, not by the gateway)."""
    with wave.open(str(AUDIO / name), "rb") as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
    count = round(samples.size * RATE / rate)
    resampled = np.interp(np.arange(count) * rate / RATE, np.arange(samples.size), samples)
    quiet_before, quiet_after = np.zeros(round(RATE * silence_before)), np.zeros(round(RATE * silence_after))
    return np.concatenate([quiet_before, resampled, quiet_after]).astype("<i2").tobytes()


def as_wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(pcm)
    return out.getvalue()


def text(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()  # a text frame, as the protocol wants


def client(gateway: AsgiServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=gateway.url + "/v1", api_key=EMULATOR_KEY)


_GA_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
_BETA_EVENTS: TypeAdapter[Any] = TypeAdapter(BetaRealtimeServerEvent)


def conforms(event: dict[str, Any]) -> None:
    """The event validates as one of the `openai` package's server event types, GA or beta: the SDK's client does
    not check what it receives, but the Agents SDK does, and drops (as an error) an event that does not fit."""
    try:
        _GA_EVENTS.validate_python(event)
    except ValidationError as ga:
        try:
            _BETA_EVENTS.validate_python(event)
        except ValidationError:
            raise AssertionError(f"{event.get('type')} fits no server event type: {ga}") from None


async def until(connection: Any, last: str) -> list[Any]:
    """Events up to and including the first of type `last`."""
    seen = []
    async for event in connection:
        conforms(event.to_dict())
        seen.append(event)
        if event.type == last:
            return seen
    raise AssertionError(f"the session ended before {last}: {[e.type for e in seen]}")


async def test_a_spoken_command_with_server_vad_is_heard_answered_and_spoken(
    voice_gateway: AsgiServer, script: Script
) -> None:
    script({"content": "The kitchen light is on."})
    command = pcm24k("kitchen_lights_on.wav")
    async with client(voice_gateway) as sdk, sdk.realtime.connect(model=AGENT) as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer briefly.",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "alloy"},
                },
            }
        )
        updated = await connection.recv()
        assert updated.type == "session.updated" and updated.session.instructions == "Answer briefly."
        for start in range(0, len(command), RATE // 10 * 2):  # 100 ms chunks, as a microphone sends them
            await connection.input_audio_buffer.append(audio=base64.b64encode(command[start : start + 4800]).decode())
        events = await until(connection, "response.done")

    kinds = [event.type for event in events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    assert kinds.count("input_audio_buffer.speech_started") == 1
    started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e.type == "input_audio_buffer.speech_stopped")
    assert 0 <= started.audio_start_ms < 600 and stopped.audio_end_ms > started.audio_start_ms + 800
    assert started.item_id == stopped.item_id
    heard = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
    assert heard.item_id == stopped.item_id
    assert {"kitchen", "on"} <= set(words(heard.transcript)), heard.transcript
    assert kinds.index("conversation.item.input_audio_transcription.completed") < kinds.index("response.done")

    transcript = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert transcript == "The kitchen light is on."
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    assert len(audio) > RATE  # more than half a second of speech
    assert {"kitchen", "light", "on"} <= set(words(transcribe(voice_gateway, as_wav(audio))))
    done = events[-1].response
    assert done.status == "completed" and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    assert [item.type for item in done.output] == ["message"]


async def test_function_calls_go_to_the_client_and_its_output_comes_back(
    voice_gateway: AsgiServer, script: Script
) -> None:
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "Done, the kitchen is lit."})
    async with client(voice_gateway) as sdk, sdk.realtime.connect(model=AGENT) as connection:
        await connection.recv()
        await connection.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["text"],
                "tools": [LIGHT_TOOL],
                "audio": {"input": {"turn_detection": None}},
            }
        )
        assert (await connection.recv()).session.tools[0].name == "set_light"
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Kitchen light on"}]}
        )
        await connection.response.create()
        first = await until(connection, "response.done")
        call = next(e for e in first if e.type == "response.function_call_arguments.done")
        assert call.name == "set_light" and orjson.loads(call.arguments) == {"room": "kitchen", "on": True}
        assert first[-1].response.output[0].type == "function_call"

        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": '{"ok": true}'}
        )
        await connection.response.create()
        second = await until(connection, "response.done")
    text = "".join(e.delta for e in second if e.type == "response.output_text.delta")
    assert text == "Done, the kitchen is lit."
    added = [e.item for e in second if e.type == "conversation.item.added"]
    assert added[0].type == "function_call_output" and added[0].call_id == call.call_id
    assert "response.output_audio.delta" not in {e.type for e in second}


async def test_manual_commit_without_vad(voice_gateway: AsgiServer, script: Script) -> None:
    script({"content": "Unlocking needs your yes."})
    command = pcm24k("unlock_front_door.wav", silence_after=0.3)
    async with client(voice_gateway) as sdk, sdk.realtime.connect(model=AGENT) as connection:
        await connection.recv()
        await connection.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        assert (await connection.recv()).session.audio.input.turn_detection is None
        await connection.input_audio_buffer.append(audio=base64.b64encode(command).decode())
        await connection.input_audio_buffer.commit()
        heard = await until(connection, "conversation.item.input_audio_transcription.completed")
        assert "input_audio_buffer.speech_started" not in [e.type for e in heard]
        assert heard[0].type == "input_audio_buffer.committed"
        assert {"unlock", "door"} <= set(words(heard[-1].transcript)), heard[-1].transcript
        # Without VAD nothing answers until the client asks.
        await connection.response.create(response={"output_modalities": ["text"]})
        answered = await until(connection, "response.done")
    assert answered[0].type == "response.created"
    assert "".join(e.delta for e in answered if e.type == "response.output_text.delta") == "Unlocking needs your yes."


async def test_hostile_events_get_error_events_and_the_session_goes_on(voice_gateway: AsgiServer) -> None:
    url = voice_gateway.url.replace("http://", "ws://") + f"/v1/realtime?model={AGENT}"
    headers = {"authorization": f"Bearer {EMULATOR_KEY}"}
    async with connect(url, additional_headers=headers, max_size=None) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"

        async def answer(frame: str | bytes) -> dict[str, Any]:
            await socket.send(frame)
            event: dict[str, Any] = orjson.loads(await socket.recv())
            return event

        def error(event: dict[str, Any]) -> dict[str, Any]:
            assert event["type"] == "error", event
            conforms(event)
            body: dict[str, Any] = event["error"]
            assert body["type"] == "invalid_request_error" and body["message"]
            return body

        assert error(await answer("{not json"))["code"] == "invalid_json"
        assert error(await answer(b"\x00\x01binary"))["code"] == "invalid_event"
        assert error(await answer("[1, 2]"))["code"] == "invalid_event"
        hostile = "<script>alert(1)</script>" + "x" * 5000
        unknown = error(await answer(text({"type": hostile, "event_id": "evt_1"})))
        assert unknown["param"] == "type", unknown
        assert unknown["event_id"] == "evt_1" and len(unknown["message"]) < 200
        bad = error(await answer(text({"type": "input_audio_buffer.append", "audio": "%%%not base64"})))
        assert bad["param"] == "audio"
        assert error(await answer('{"type": "input_audio_buffer.commit"}'))["code"] == "input_audio_buffer_commit_empty"
        assert error(await answer('{"type": "response.cancel"}'))["code"] == "response_cancel_not_active"
        g711 = {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}}
        assert error(await answer(text(g711)))["param"] == "session.audio.input.format"
        semantic = {"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}
        assert error(await answer(text(semantic)))["param"] == "session.turn_detection"
        tracing = {"type": "session.update", "session": {"tracing": {"workflow_name": ["<b>"]}}}
        assert error(await answer(text(tracing)))["param"] == "session.tracing.workflow_name"
        function = {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": 7}}
        assert error(await answer(text(function)))["param"] == "item.call_id"
        # 11 s of audio in frames under the frame limit: the 10 s buffer refuses the rest, and keeps what it had.
        off = {"type": "session.update", "session": {"turn_detection": None}}
        assert (await answer(text(off)))["type"] == "session.updated"
        second = base64.b64encode(bytes(2 * RATE)).decode()
        for _ in range(10):
            await socket.send(text({"type": "input_audio_buffer.append", "audio": second}))
        full = error(await answer(text({"type": "input_audio_buffer.append", "audio": second})))
        assert full["code"] == "input_audio_buffer_full"
        assert (await answer('{"type": "input_audio_buffer.clear"}'))["type"] == "input_audio_buffer.cleared"
        # Still serving after all that.
        fine = await answer(text({"type": "session.update", "session": {"instructions": "ok"}}))
        assert fine["type"] == "session.updated" and fine["session"]["instructions"] == "ok"
        # A frame over realtime.max_frame_bytes ends the session (the server's bound, as for relayed sessions).
        # The server may close while the frame is still being sent: then the send itself sees the close.
        with pytest.raises(ConnectionClosed):
            await socket.send(text({"type": "input_audio_buffer.append", "audio": "A" * (2 << 20)}))
            while True:
                await socket.recv()
    assert socket.close_code == 1009


async def test_http_calls_to_a_pipeline_model_are_refused(voice_gateway: AsgiServer) -> None:
    async with client(voice_gateway) as sdk:
        with pytest.raises(Exception) as refused:
            await sdk.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "hi"}])
    assert getattr(refused.value, "status_code", None) == 400 and "realtime" in str(refused.value)


async def test_an_audio_item_is_heard_too(voice_gateway: AsgiServer) -> None:
    said = base64.b64encode(pcm24k("yes.wav", silence_after=0.2)).decode()
    async with client(voice_gateway) as sdk, sdk.realtime.connect(model=AGENT) as connection:
        await connection.recv()
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": said}]}
        )
        events = await until(connection, "conversation.item.input_audio_transcription.completed")
    added = next(e for e in events if e.type == "conversation.item.added")
    assert added.item.content[0].type == "input_audio" and added.item.content[0].transcript is None
    assert events[-1].item_id == added.item.id and "yes" in words(events[-1].transcript)


async def test_the_sdks_beta_client_gets_the_beta_protocol(voice_gateway: AsgiServer, script: Script) -> None:
    script({"content": "The kitchen light is on."})
    # The beta client always speaks wss:// unless given a WebSocket base URL.
    ws_base = voice_gateway.url.replace("http://", "ws://") + "/v1"
    sdk = AsyncOpenAI(base_url=voice_gateway.url + "/v1", api_key=EMULATOR_KEY, websocket_base_url=ws_base)
    async with sdk, sdk.beta.realtime.connect(model=AGENT) as connection:
        created = await connection.recv()
        assert created.type == "session.created" and created.session.modalities == ["text", "audio"]
        await connection.session.update(
            session={
                "modalities": ["text", "audio"],
                "voice": "alloy",
                "input_audio_format": "pcm16",
                "turn_detection": None,
            }
        )
        updated = await connection.recv()
        assert updated.type == "session.updated" and updated.session.turn_detection is None
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "kitchen light on"}]}
        )
        assert (await connection.recv()).type == "conversation.item.created"
        await connection.response.create()
        events = await until(connection, "response.done")
    kinds = {event.type for event in events}
    assert {"response.audio.delta", "response.audio_transcript.done", "conversation.item.created"} <= kinds
    ga_only = {"response.output_audio.delta", "response.output_audio_transcript.delta", "conversation.item.added"}
    assert not kinds & ga_only and "response.output_item.added" in kinds  # (a name both protocols share)
    transcript = "".join(e.delta for e in events if e.type == "response.audio_transcript.delta")
    assert transcript == "The kitchen light is on."
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.audio.delta")
    assert {"kitchen", "light"} <= set(words(transcribe(voice_gateway, as_wav(audio))))
    assert events[-1].response.output[0].content[0].type == "audio"


async def test_items_are_retrieved_and_a_reply_truncated_to_what_was_played(
    voice_gateway: AsgiServer, script: Script
) -> None:
    script({"content": "The kitchen light is on."})
    url = voice_gateway.url.replace("http://", "ws://") + f"/v1/realtime?model={AGENT}"
    async with connect(url, additional_headers={"authorization": f"Bearer {EMULATOR_KEY}"}) as socket:

        async def next_of(kind: str) -> dict[str, Any]:
            while True:
                event: dict[str, Any] = orjson.loads(await socket.recv())
                conforms(event)
                if event["type"] in (kind, "error"):
                    return event

        await socket.send(text({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}))
        await next_of("session.updated")
        said = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "kitchen light"}]}
        await socket.send(text({"type": "conversation.item.create", "item": {**said, "id": "item_user_1"}}))
        await socket.send(text({"type": "response.create"}))
        reply = (await next_of("response.done"))["response"]["output"][0]
        assert reply["content"][0]["transcript"] == "The kitchen light is on."

        await socket.send(text({"type": "conversation.item.retrieve", "item_id": "item_user_1"}))
        assert (await next_of("conversation.item.retrieved"))["item"]["content"][0]["text"] == "kitchen light"
        await socket.send(text({"type": "conversation.item.retrieve", "item_id": "<b>nope</b>"}))
        assert (await next_of("conversation.item.retrieved"))["error"]["code"] == "item_not_found"

        def truncate(item: str, end: Any, index: Any = 0) -> str:
            event = {"type": "conversation.item.truncate", "item_id": item, "content_index": index}
            return text({**event, "audio_end_ms": end})

        await socket.send(truncate("item_user_1", 100))
        assert (await next_of("conversation.item.truncated"))["error"]["param"] == "content_index"
        await socket.send(truncate(reply["id"], 100, index=3))
        assert (await next_of("conversation.item.truncated"))["error"]["param"] == "content_index"
        for beyond in (60_000, -1, "100", True):  # longer than the reply's audio, or not a count of ms
            await socket.send(truncate(reply["id"], beyond))
            assert (await next_of("conversation.item.truncated"))["error"]["param"] == "audio_end_ms"
        await socket.send(truncate(reply["id"], 400))
        truncated = await next_of("conversation.item.truncated")
        assert truncated == {**truncated, "item_id": reply["id"], "content_index": 0, "audio_end_ms": 400}
        # As OpenAI does: the transcript goes (the user did not hear it all), and the audio is 400 ms long now.
        await socket.send(text({"type": "conversation.item.retrieve", "item_id": reply["id"]}))
        assert (await next_of("conversation.item.retrieved"))["item"]["content"][0]["transcript"] == ""
        await socket.send(truncate(reply["id"], 401))
        assert (await next_of("conversation.item.truncated"))["error"]["param"] == "audio_end_ms"
