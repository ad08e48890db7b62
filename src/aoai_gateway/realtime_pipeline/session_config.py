"""A pipeline session's settings as the client sets them with `session.update`, checked whole before any applies.

    config = SessionConfig.starting(deployment.pipeline)
    config = config.updated(event["session"])      # a new config, or InvalidRequest naming the bad field
    config.described(model="voice-agent")          # the `session` object of session.created / session.updated

Both shapes clients send are read: GA (`audio.input.turn_detection`, `audio.output.voice`, `output_modalities`)
and the beta's flat one (`turn_detection`, `voice`, `modalities`, `input_audio_format: "pcm16"`). Audio is pcm16
at 24 kHz only; `semantic_vad` and G.711 are refused with an error naming what is served.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config.pipeline import PipelineSettings
from ..errors import InvalidRequest
from .vad import SAMPLE_RATE

_PCM = {"type": "audio/pcm", "rate": SAMPLE_RATE}
_TOOL_CHOICES = ("auto", "none", "required")
_MAX_TOOLS = 128


@dataclass(frozen=True, slots=True)
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def described(self) -> dict[str, Any]:
        return {"type": "server_vad", **dataclasses.asdict(self)}


@dataclass(frozen=True, slots=True)
class SessionConfig:
    instructions: str
    voice: str
    transcription_model: str
    turn_detection: TurnDetection | None = TurnDetection()
    output_modalities: tuple[str, ...] = ("audio",)
    tools: tuple[dict[str, Any], ...] = ()  # as the client gave them (Realtime's flat function shape)
    tool_choice: str | dict[str, Any] = "auto"
    # Kept and shown as the client set it (the Agents SDK sends "auto"): nothing is traced at OpenAI from here.
    tracing: str | dict[str, Any] | None = None

    @classmethod
    def starting(cls, settings: PipelineSettings) -> SessionConfig:
        return cls(settings.instructions, settings.voice, settings.transcription_model)

    def updated(self, session: Any) -> SessionConfig:
        if not isinstance(session, dict):
            raise _bad("The session must be an object.", "session")
        if session.get("type", "realtime") != "realtime":
            raise _bad("This model serves realtime sessions, not transcription ones.", "session.type")
        change: dict[str, Any] = {}
        audio = _object(session.get("audio", {}), "session.audio")
        audio_in = _object(audio.get("input", {}), "session.audio.input")
        audio_out = _object(audio.get("output", {}), "session.audio.output")
        for where, value in (
            ("session.audio.input.format", audio_in.get("format")),
            ("session.audio.output.format", audio_out.get("format")),
            ("session.input_audio_format", session.get("input_audio_format")),
            ("session.output_audio_format", session.get("output_audio_format")),
        ):
            _check_format(value, where)
        if "instructions" in session:
            change["instructions"] = _text(session["instructions"], "session.instructions")
        for where, value in (
            ("session.audio.output.voice", audio_out.get("voice")),
            ("session.voice", session.get("voice")),
        ):
            if value is not None:
                change["voice"] = _text(value, where)
        for where, holder in (("session.audio.input.turn_detection", audio_in), ("session.turn_detection", session)):
            if "turn_detection" in holder:
                change["turn_detection"] = _turn_detection(holder["turn_detection"], where)
        for name in ("output_modalities", "modalities"):
            if name in session:
                change["output_modalities"] = modalities(session[name], f"session.{name}")
        if "tools" in session:
            change["tools"] = _tools(session["tools"])
        if "tool_choice" in session:
            change["tool_choice"] = tool_choice(session["tool_choice"])
        if "tracing" in session:
            change["tracing"] = _tracing(session["tracing"])
        return dataclasses.replace(self, **change)

    def described(self, model: str, session_id: str) -> dict[str, Any]:
        detection = self.turn_detection.described() if self.turn_detection is not None else None
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "tools": list(self.tools),
            "tool_choice": self.tool_choice,
            "max_output_tokens": "inf",
            "tracing": self.tracing,
            "audio": {
                "input": {
                    "format": dict(_PCM),
                    "transcription": {"model": self.transcription_model},
                    "noise_reduction": None,
                    "turn_detection": detection,
                },
                "output": {"format": dict(_PCM), "voice": self.voice, "speed": 1.0},
            },
        }


def modalities(value: Any, where: str) -> tuple[str, ...]:
    if value == ["text"]:
        return ("text",)
    if value in (["audio"], ["audio", "text"], ["text", "audio"]):
        return ("audio",)  # audio always comes with its transcript
    raise _bad("Output modalities must be ['audio'] or ['text'].", where)


def tool_choice(value: Any) -> str | dict[str, Any]:
    if value in _TOOL_CHOICES:
        return str(value)
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return {"type": "function", "name": value["name"]}
    raise _bad("tool_choice must be auto, none, required or {type: function, name}.", "tool_choice")


def _tools(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or len(value) > _MAX_TOOLS:
        raise _bad(f"tools must be a list of at most {_MAX_TOOLS} functions.", "session.tools")
    tools = []
    for index, tool in enumerate(value):
        where = f"session.tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _bad("Only function tools are served.", where)
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("A function tool needs a name.", f"{where}.name")
        parameters = tool.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise _bad("A function's parameters must be a JSON Schema object.", f"{where}.parameters")
        description = tool.get("description", "")
        tools.append(
            {"type": "function", "name": name, "description": _text(description, where), "parameters": parameters}
        )
    return tuple(tools)


def _tracing(value: Any) -> str | dict[str, Any] | None:
    if value is None or value == "auto":
        return None if value is None else "auto"
    config = _object(value, "session.tracing")
    shown: dict[str, Any] = {}
    for name in ("workflow_name", "group_id"):
        if config.get(name) is not None:
            shown[name] = _text(config[name], f"session.tracing.{name}")[:256]
    if config.get("metadata") is not None:
        shown["metadata"] = _object(config["metadata"], "session.tracing.metadata")
    return shown


def _turn_detection(value: Any, where: str) -> TurnDetection | None:
    if value is None:
        return None
    detection = _object(value, where)
    if detection.get("type", "server_vad") != "server_vad":
        raise _bad("Only server_vad turn detection is served (or null to commit by hand).", where)
    fields: dict[str, Any] = {}
    for name, kind, low, high in (
        ("threshold", float, 0.0, 1.0),
        ("prefix_padding_ms", int, 0, 5000),
        ("silence_duration_ms", int, 20, 10_000),
    ):
        if detection.get(name) is None:
            continue
        number = detection[name]
        if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high:
            raise _bad(f"{name} must be a number from {low:g} to {high:g}.", f"{where}.{name}")
        fields[name] = kind(number)
    for name in ("create_response", "interrupt_response"):
        if detection.get(name) is not None:
            if not isinstance(detection[name], bool):
                raise _bad(f"{name} must be true or false.", f"{where}.{name}")
            fields[name] = detection[name]
    return TurnDetection(**fields)


def _check_format(value: Any, where: str) -> None:
    if value is None or value == "pcm16":
        return
    if isinstance(value, dict) and value.get("type") == "audio/pcm" and value.get("rate", SAMPLE_RATE) == SAMPLE_RATE:
        return
    raise _bad("This voice agent speaks and hears pcm16 at 24 kHz (audio/pcm, rate 24000) only.", where)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object.", where)
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where} must be a string.", where)
    return value


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")
