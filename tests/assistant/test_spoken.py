"""The whole loop by voice, offline: a spoken command (espeak-ng, committed WAVs) -> local Whisper (the bundled
tiny.en) -> the emulator's scripted tool calls -> the simulated home changed -> the reply spoken by the local
eSpeak NG voice -> that audio transcribed back to the reply's words."""

from __future__ import annotations

import base64
import io
import re
import wave
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..servers import AsgiServer
from .conftest import AssistantClient, Script, assistant_settings, light_call

AUDIO = Path(__file__).parent / "audio"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.fixture
def spoken(start_gateway: GatewayFactory, emulator_server: AsgiServer) -> Any:
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": f"{emulator_server.url}/apim/team"},
        {"model": "whisper-local", "provider": "local"},
        {"model": "tts-local", "provider": "local", "engine": "espeak-ng"},
    ]
    settings = assistant_settings(transcription_model="whisper-local", speech_model="tts-local")
    gateway = start_gateway(deployments=deployments, assistant=settings)
    client = AssistantClient(gateway)
    yield client, gateway
    client.http.close()


def transcribe(gateway: AsgiServer, audio: bytes) -> str:
    answer = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        data={"model": "whisper-local"},
        files={"file": ("reply.wav", audio)},
        headers={"authorization": f"Bearer {EMULATOR_KEY}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    text: str = answer.json()["text"]
    return text


def test_a_spoken_command_turns_on_the_light_and_the_reply_is_spoken(
    spoken: tuple[AssistantClient, AsgiServer], script: Script
) -> None:
    client, gateway = spoken
    client.reset_home()
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "The kitchen light is on."})
    session = client.session()
    command = (AUDIO / "kitchen_lights_on.wav").read_bytes()

    with client.http.stream(
        "POST",
        f"/sessions/{session}/turns",
        files={"file": ("command.wav", command)},
        data={"speech": "true", "stream": "true"},
    ) as response:
        assert response.status_code == 200
        raw = b"".join(response.iter_bytes())
    events = [
        (block.split(b"\n")[0][len(b"event: ") :].decode(), block.split(b"\n")[1][len(b"data: ") :])
        for block in raw.split(b"\n\n")
        if block.strip()
    ]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "transcript" and kinds[-3:] == ["reply", "audio", "done"]
    data = {kind: orjson.loads(body) for kind, body in events}
    assert words(data["transcript"]["text"]) == ["turn", "on", "the", "kitchen", "lights"]
    assert data["transcript"]["source"] == "audio" and data["transcript"]["duration"] > 1
    assert client.home()["lights"]["kitchen"]["on"] is True

    reply_audio = base64.b64decode(data["audio"]["data"])
    assert reply_audio[:4] == b"RIFF"
    assert words(transcribe(gateway, reply_audio)) == ["the", "kitchen", "light", "is", "on"]


def test_unlocking_by_voice_needs_a_spoken_yes(spoken: tuple[AssistantClient, AsgiServer], script: Script) -> None:
    client, _ = spoken
    client.reset_home()
    session = client.session()
    script({"tool_calls": [{"name": "unlock_door", "arguments": {"door": "front door"}}]}, {"content": "Sure?"})

    def say(name: str) -> Any:
        response = client.http.post(
            f"/sessions/{session}/turns", files={"file": (name, (AUDIO / name).read_bytes())}, data={"speech": "false"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    first = say("unlock_front_door.wav")
    assert words(first["transcript"]) == ["unlock", "the", "front", "door"]
    assert first["pending_confirmation"]["name"] == "unlock_door"
    assert client.home()["doors"]["front door"]["locked"] is True
    script({"content": "The front door is unlocked."})
    second = say("yes.wav")
    assert words(second["transcript"]) == ["yes", "go", "ahead"]
    assert second["tool_calls"][0]["ok"] is True
    assert client.home()["doors"]["front door"]["locked"] is False


def test_the_local_voice_speaks_every_format_and_refuses_bad_input(spoken: tuple[AssistantClient, AsgiServer]) -> None:
    _, gateway = spoken
    magic = {"wav": b"RIFF", "mp3": b"ID3", "opus": b"OggS", "flac": b"fLaC", "aac": b"\xff\xf1"}

    def speak(**body: Any) -> httpx.Response:
        return httpx.post(f"{gateway.url}/v1/audio/speech", json={"model": "tts-local", **body}, timeout=120)

    for fmt, head in magic.items():
        answer = speak(input="The front door is unlocked.", voice="nova", response_format=fmt)
        assert answer.status_code == 200 and answer.content.startswith(head), fmt
    assert words(transcribe(gateway, speak(input="The front door is unlocked.", response_format="flac").content)) == [
        "the", "front", "door", "is", "unlocked",
    ]  # fmt: skip
    pcm = speak(input="hello", response_format="pcm")
    assert pcm.headers["content-type"] == "audio/pcm" and len(pcm.content) % 2 == 0
    for bad in (
        {"input": "hi", "voice": "../../../etc/passwd"},
        {"input": "hi", "voice": "xx-nope"},
        {"input": ""},
        {"input": "x" * 4097},
        {"input": "hi", "speed": 9},
        {"input": "hi", "speed": True},
        {"input": "hi", "response_format": "exe"},
        {"input": ["not", "text"]},
    ):
        refused = speak(**bad)
        assert refused.status_code == 400, bad
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    nul = speak(input="the door\x00\x07 is open", response_format="wav")
    assert nul.status_code == 200


def test_audio_that_is_not_audio_or_is_silence(spoken: tuple[AssistantClient, AsgiServer], script: Script) -> None:
    client, _ = spoken
    session = client.session()
    garbage = client.http.post(f"/sessions/{session}/turns", files={"file": ("a.wav", b"RIFF" + b"\x00\xff" * 500)})
    assert garbage.status_code == 400
    error = garbage.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "file")  # local Whisper's own refusal, passed on
    # Two seconds of silence: nothing heard, nothing asked of the chat model, the session unchanged.
    silence = io.BytesIO()
    with wave.open(silence, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x00\x00" * 32000)
    turn = client.http.post(f"/sessions/{session}/turns", files={"file": ("s.wav", silence.getvalue())}).json()
    assert turn["transcript"] == "" and turn["reply"].startswith("Sorry, I did not hear anything")
    assert turn["rounds"] == 0
    assert client.http.get(f"/sessions/{session}").json()["messages"] == []
