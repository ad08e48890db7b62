"""The OpenAI Agents SDK's realtime agents against a `provider: pipeline` deployment, on a real socket: a
`RealtimeAgent` with a `@function_tool`, run by `RealtimeRunner` with the gateway's URL as its model's `url`.
A spoken command (espeak-ng, pcm16 at 24 kHz) goes through `session.send_audio` -> server VAD -> local Whisper
-> the emulator's scripted function call -> the tool runs in this process, the SDK sends its output back and asks
for a response -> the scripted reply, spoken by the local voice and transcribed back to its words."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from agents import function_tool
from agents.realtime import (
    RealtimeAgent,
    RealtimePlaybackTracker,
    RealtimeRunner,
    RealtimeSession,
    RealtimeSessionEvent,
    RealtimeSessionModelSettings,
)
from agents.realtime.model import RealtimeModelConfig

from ..conftest import EMULATOR_KEY
from ..servers import AsgiServer
from .conftest import Script, light_call
from .test_realtime_pipeline import AGENT, RATE, as_wav, pcm24k, voice_gateway
from .test_spoken import transcribe, words

__all__ = ["voice_gateway"]  # the module's gateway fixture, shared with the `openai` SDK's tests

BOUND_SECONDS = 90  # local Whisper and espeak-ng on two busy cores


def home_agent(switched: list[dict[str, Any]]) -> RealtimeAgent[Any]:
    @function_tool
    def set_light(room: str, on: bool) -> str:
        """Switch a room's light on or off.

        Args:
            room: The room, such as kitchen or bedroom.
            on: True to switch the light on, false to switch it off.
        """
        switched.append({"room": room, "on": on})
        return f"The {room} light is now {'on' if on else 'off'}."

    return RealtimeAgent(name="home", instructions="You run a home. Answer briefly.", tools=[set_light])


@asynccontextmanager
async def agent_session(
    gateway: AsgiServer,
    agent: RealtimeAgent[Any],
    settings: RealtimeSessionModelSettings,
    playback: RealtimePlaybackTracker | None = None,
) -> AsyncIterator[RealtimeSession]:
    runner = RealtimeRunner(starting_agent=agent, config={"model_settings": settings})
    url = gateway.url.replace("http://", "ws://") + f"/v1/realtime?model={AGENT}"
    config: RealtimeModelConfig = {"url": url, "api_key": EMULATOR_KEY}
    if playback is not None:
        config["playback_tracker"] = playback
    async with await runner.run(model_config=config) as session:
        yield session


async def events_until(
    session: RealtimeSession, done: Any, seen: list[RealtimeSessionEvent] | None = None
) -> list[RealtimeSessionEvent]:
    """The session's events until `done(events)` holds, bounded (an error event fails the test at once)."""
    events = seen if seen is not None else []
    async with asyncio.timeout(BOUND_SECONDS):
        async for event in session:
            events.append(event)
            assert event.type != "error", event.error
            if done(events):
                return events
    raise AssertionError(f"the session ended early: {[e.type for e in events]}")


def raw(events: list[RealtimeSessionEvent], kind: str) -> list[dict[str, Any]]:
    """The gateway's own server events of one type, as the SDK received them."""
    found = []
    for event in events:
        if event.type == "raw_model_event" and event.data.type == "raw_server_event":
            data = event.data.data
            if isinstance(data, dict) and data.get("type") == kind:
                found.append(data)
    return found


def history(events: list[RealtimeSessionEvent]) -> list[Any]:
    """The SDK's view of the conversation, as its last `history_updated` event gave it."""
    return list(next(e for e in reversed(events) if e.type == "history_updated").history)


def responses_done(events: list[RealtimeSessionEvent]) -> int:
    return len(raw(events, "response.done"))


async def speak(session: RealtimeSession, name: str) -> None:
    command = pcm24k(name)
    for start in range(0, len(command), RATE // 10 * 2):  # 100 ms chunks, as a microphone sends them
        await session.send_audio(command[start : start + RATE // 10 * 2])


async def test_a_spoken_command_runs_the_agents_function_tool_and_the_reply_is_spoken(
    voice_gateway: AsgiServer, script: Script
) -> None:
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "The kitchen light is on."})
    switched: list[dict[str, Any]] = []
    settings: RealtimeSessionModelSettings = {
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        "output_modalities": ["audio"],
        "voice": "alloy",
    }
    playback = RealtimePlaybackTracker()  # what the user heard of the reply, as a player would report it
    async with agent_session(voice_gateway, home_agent(switched), settings, playback) as session:
        await speak(session, "kitchen_lights_on.wav")
        events = await events_until(session, lambda seen: responses_done(seen) == 2)
        reply_id = [e for e in events if e.type == "audio"][-1].item_id
        # The user heard half a second of the reply and spoke again: the SDK interrupts it, tells the server how
        # much was played (conversation.item.truncate), and asks for the item back (conversation.item.retrieve).
        script({"content": "Unlocking needs your yes."})
        playback.on_play_ms(reply_id, 0, 500.0)
        await speak(session, "unlock_front_door.wav")
        later = await events_until(session, lambda seen: responses_done(seen) == 1)

    kinds = [event.type for event in events]
    assert switched == [{"room": "kitchen", "on": True}]  # the tool ran here, with the model's arguments
    started = next(e for e in events if e.type == "tool_start")
    ended = next(e for e in events if e.type == "tool_end")
    assert started.tool.name == "set_light" and orjson.loads(started.arguments or "{}") == {
        "room": "kitchen",
        "on": True,
    }
    assert ended.output == "The kitchen light is now on."
    # The SDK sent the tool's output back: the gateway added it to the conversation and answered it.
    outputs = [e["item"] for e in raw(events, "conversation.item.added") if e["item"]["type"] == "function_call_output"]
    assert [item["output"] for item in outputs] == ["The kitchen light is now on."]
    calls = raw(events, "response.function_call_arguments.done")
    assert [call["call_id"] for call in calls] == [outputs[0]["call_id"]]
    assert kinds.index("tool_end") < len(kinds) - 1 - kinds[::-1].index("audio")

    heard = raw(events, "conversation.item.input_audio_transcription.completed")
    assert {"kitchen", "on"} <= set(words(heard[0]["transcript"])), heard
    audio = b"".join(e.audio.data for e in events if e.type == "audio")
    assert len(audio) > RATE  # more than half a second of speech
    assert {"kitchen", "light", "on"} <= set(words(transcribe(voice_gateway, as_wav(audio))))
    assert "audio_end" in kinds

    # The SDK's history: the user's words, the call with its output, the spoken reply with its transcript.
    user = next(item for item in history(events) if item.type == "message" and item.role == "user")
    assert {"kitchen", "on"} <= set(words(user.content[0].transcript or ""))
    call = next(item for item in history(events) if item.type == "function_call")
    assert call.name == "set_light" and call.output == "The kitchen light is now on."
    reply = [item for item in history(events) if item.type == "message" and item.role == "assistant"][-1]
    assert reply.content[0].transcript == "The kitchen light is on." and reply.item_id == reply_id

    assert [(e.item_id, e.content_index) for e in later if e.type == "audio_interrupted"] == [(reply_id, 0)]
    truncated = raw(later, "conversation.item.truncated")
    assert [(e["item_id"], e["audio_end_ms"]) for e in truncated] == [(reply_id, 500)]
    retrieved = [e["item"] for e in raw(later, "conversation.item.retrieved") if e["item"]["id"] == reply_id]
    assert retrieved and retrieved[-1]["content"][0]["transcript"] == ""  # the unheard words are gone, as OpenAI's
    heard_again = raw(later, "conversation.item.input_audio_transcription.completed")
    assert {"unlock", "door"} <= set(words(heard_again[0]["transcript"])), heard_again
    spoken = "".join(e["delta"] for e in raw(later, "response.output_audio_transcript.delta"))
    assert spoken == "Unlocking needs your yes." and [e for e in later if e.type == "audio"]


async def test_a_text_message_gets_a_reply(voice_gateway: AsgiServer, script: Script) -> None:
    script({"content": "Good evening, all lights are off."})
    settings: RealtimeSessionModelSettings = {"turn_detection": None, "output_modalities": ["text"]}
    async with agent_session(voice_gateway, home_agent([]), settings) as session:
        await session.send_message("Good evening")
        # The SDK sends its tracing in a session.update of its own once the session is created, which may reach
        # the gateway after the message: wait for both, not for whichever comes first.
        events = await events_until(
            session,
            lambda seen: (
                responses_done(seen) == 1 and any(e["session"].get("tracing") for e in raw(seen, "session.updated"))
            ),
        )
    # The agent's instructions and tools became the session's; the SDK's tracing "auto" is kept and shown back.
    session_shown = raw(events, "session.updated")[-1]["session"]
    assert session_shown["instructions"] == "You run a home. Answer briefly."
    assert [tool["name"] for tool in session_shown["tools"]] == ["set_light"]
    assert session_shown["tracing"] == "auto"
    text = "".join(e["delta"] for e in raw(events, "response.output_text.delta"))
    assert text == "Good evening, all lights are off."
    assert not [e for e in events if e.type == "audio"]
    user = next(item for item in history(events) if item.type == "message" and item.role == "user")
    assert user.content[0].text == "Good evening"
    reply = next(item for item in history(events) if item.type == "message" and item.role == "assistant")
    assert reply.content[0].text == "Good evening, all lights are off."


async def test_the_sdks_default_semantic_vad_is_refused_in_an_error_event(voice_gateway: AsgiServer) -> None:
    """The SDK asks for semantic_vad unless told otherwise; an energy detector is not that, so the update is
    refused as a whole, visibly (README: ask for server_vad), rather than served as something it is not."""
    refused: Any = None
    async with agent_session(voice_gateway, home_agent([]), {}) as session:
        async with asyncio.timeout(BOUND_SECONDS):
            async for event in session:
                if event.type == "error":
                    refused = event.error  # the body of the gateway's `error` event, as the SDK parsed it
                    break
    assert refused is not None, "no error event"
    assert refused.param == "session.audio.input.turn_detection" and "server_vad" in refused.message
