"""`aoai-gateway assistant`: one turn from the command line, in-process through the configured gateway."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from aoai_gateway.cli import main

from ..conftest import EMULATOR_KEY
from ..servers import AsgiServer
from .conftest import Script, light_call
from .test_spoken import AUDIO, words


def config(tmp_path: Path, emulator_server: AsgiServer) -> str:
    settings = {
        "data_dir": str(tmp_path),
        "deployments": [
            {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": emulator_server.url},
            {"model": "whisper-local", "provider": "local"},
            {"model": "tts-local", "provider": "local", "engine": "espeak-ng"},
        ],
        # Not enabled in the file: the command needs only the section's models.
        "assistant": {"chat_model": "gpt-4o", "transcription_model": "whisper-local", "speech_model": "tts-local"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_a_typed_turn_prints_each_stage(
    tmp_path: Path, emulator_server: AsgiServer, script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "The kitchen light is on."})
    code = main(["assistant", "--text", "kitchen lights on", "--config", config(tmp_path, emulator_server),
                 "--api-key", EMULATOR_KEY])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "heard: kitchen lights on"
    assert out[1] == 'tool:  set_light {"room":"kitchen","on":true}'
    assert out[2].startswith('       -> {"kitchen":{"on":true')
    assert out[-1] == "reply: The kitchen light is on."


def test_a_recorded_turn_with_a_spoken_reply(
    tmp_path: Path, emulator_server: AsgiServer, script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    script({"content": "The front door is unlocked."})
    reply = tmp_path / "reply.wav"
    code = main(["assistant", "--file", str(AUDIO / "kitchen_lights_on.wav"), "--speak", str(reply), "--json",
                 "--config", config(tmp_path, emulator_server), "--api-key", EMULATOR_KEY])  # fmt: skip
    assert code == 0
    turn = json.loads(capsys.readouterr().out)
    assert words(turn["transcript"]) == ["turn", "on", "the", "kitchen", "lights"]
    assert turn["reply"] == "The front door is unlocked." and turn["audio"] == {"written_to": str(reply)}
    assert reply.read_bytes()[:4] == b"RIFF"


def test_the_command_refuses_what_it_cannot_do(
    tmp_path: Path, emulator_server: AsgiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, emulator_server)
    assert main(["assistant", "--config", path]) == 2  # neither --text, --file nor --mic
    assert "--text TEXT, --file RECORDING or --mic" in capsys.readouterr().err
    assert main(["assistant", "--text", "hi", "--config", path, "--api-key", "wrong-key"]) == 1
    assert "answered 401" in capsys.readouterr().err


def test_eval_scores_tool_choice_and_arguments(
    tmp_path: Path, emulator_server: AsgiServer, script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [
        {"text": "kitchen lights on", "calls": [light_call("kitchen", on=True)]},
        {"text": "weather in Paris", "calls": [{"name": "get_weather", "arguments": {"location": "Paris"}}]},
        {"text": "lock the back door", "calls": [{"name": "lock_door", "arguments": {"door": "back door"}}]},
        {"text": "what time is it", "calls": [{"name": "get_time", "arguments": {}}]},
    ]
    command_set = tmp_path / "set.json"
    command_set.write_text(json.dumps(commands))
    script(
        {"tool_calls": [light_call("kitchen", on=True, brightness=100)]},  # an extra argument is fine
        {"content": "ok"},
        {"tool_calls": [{"name": "get_weather", "arguments": {"location": "paris "}}]},  # case and spaces too
        {"content": "ok"},
        {"tool_calls": [{"name": "lock_door", "arguments": {"door": "front door"}}]},  # right tool, wrong door
        {"content": "ok"},
        {"content": "It is noon."},  # no tool at all
    )
    path = config(tmp_path, emulator_server)
    code = main(["assistant", "eval", "--set", str(command_set), "--json", "--config", path, "--api-key", EMULATOR_KEY])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["commands"] == 4
    assert report["tool_accuracy"] == 0.75 and report["argument_accuracy"] == 0.5
    assert [f["text"] for f in report["failures"]] == ["lock the back door", "what time is it"]


def test_the_bundled_command_set_is_well_formed() -> None:
    from aoai_gateway.assistant.evaluate import load_commands
    from aoai_gateway.assistant.home import SimulatedHome
    from aoai_gateway.assistant.tools import ToolRegistry

    commands = load_commands()
    assert len(commands) == 50 and len({c.text for c in commands}) == 50
    registry = ToolRegistry(SimulatedHome().tools())
    offered = registry.specs()
    for command in commands:
        for name, arguments in command.calls:
            checked = registry.check(name, json.dumps(arguments), offered)
            assert checked == arguments, (command.text, checked)


def test_spoken_eval_says_each_command_and_hears_it_back(
    tmp_path: Path, emulator_server: AsgiServer, script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [
        {"text": "unlock the front door", "calls": [{"name": "unlock_door", "arguments": {"door": "front door"}}]}
    ]
    command_set = tmp_path / "set.json"
    command_set.write_text(json.dumps(commands))
    script(
        {"tool_calls": [{"name": "get_doors"}]}, {"content": "ok"}
    )  # the wrong tool: the failure says what was heard
    path = config(tmp_path, emulator_server)
    code = main(
        ["assistant", "eval", "--spoken", "--set", str(command_set), "--config", path, "--api-key", EMULATOR_KEY]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "tool choice: 0/1 (0.0%)" in out
    # What tiny.en makes of the voice is not always the text ("and lock my front door"): it is shown as heard.
    assert "'unlock the front door' (heard '" in out and "front door.'): called get_doors{}" in out


def test_a_turn_from_the_microphone(
    tmp_path: Path, emulator_server: AsgiServer, script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    # ffmpeg records from an input that "says" the committed command: the same process and path as a real device.
    script({"tool_calls": [light_call("kitchen", on=True)]}, {"content": "The kitchen light is on."})
    device = f"lavfi:amovie={AUDIO / 'kitchen_lights_on.wav'}"
    code = main(["assistant", "--mic", "--mic-device", device, "--seconds", "5", "--json",
                 "--config", config(tmp_path, emulator_server), "--api-key", EMULATOR_KEY])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    turn = json.loads(capsys.readouterr().out)
    assert words(turn["transcript"]) == ["turn", "on", "the", "kitchen", "lights"]
    assert turn["tool_calls"][0]["result"]["kitchen"]["on"] is True


def test_without_a_microphone_the_command_says_so(
    tmp_path: Path, emulator_server: AsgiServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if Path("/dev/snd").exists() or Path(f"/run/user/{os.getuid()}/pulse").exists():
        pytest.skip("this machine may have a microphone: the error path needs one without")
    settings = config(tmp_path, emulator_server)
    assert main(["assistant", "--mic", "--seconds", "2", "--config", settings]) == 1
    error = capsys.readouterr().err
    assert error.startswith("aoai-gateway: No microphone could be opened: tried pulse:default (")
    assert "; alsa:default (" in error and "--mic-device FORMAT:INPUT, or pass --file RECORDING." in error
    assert main(["assistant", "--mic", "--mic-device", "nocolon", "--config", settings]) == 1
    assert "--mic-device takes FORMAT:INPUT" in capsys.readouterr().err
    # No ffmpeg at all: the PATH holds none.
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["assistant", "--mic", "--config", settings]) == 1
    assert "needs ffmpeg on the PATH" in capsys.readouterr().err
