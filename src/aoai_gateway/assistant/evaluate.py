"""`aoai-gateway assistant eval`: how well the configured chat model picks the tools and their arguments.

    report = await evaluate(assistant, caller, load_commands())      # the bundled 50 commands (commands.json)
    report.tool_accuracy, report.argument_accuracy                   # 0..1
    await evaluate(assistant, caller, commands, spoken=True)         # each spoken by the speech model first

Each command runs as one turn in a fresh session, on a home reset before it; the calls the model asked for are
compared with the expected ones. A command's tools are right when the model called exactly the expected tool names
(as a multiset, in any order); an expected call's arguments are right when the model's call of that tool has every
expected argument with the same value (strings compared without case; extra arguments are allowed, since a model
may add defaults). Confirmation-bound calls count as called: they are what the model asked for. With `spoken`, each
command is first said by `assistant.speech_model` and the turn takes that audio, so transcription is scored too
(what was heard is in each failure).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import GatewayError
from .service import AssistantService
from .turn import Caller, TurnEvent, TurnInput

__all__ = ["Command", "EvalReport", "evaluate", "load_commands"]


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    calls: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(slots=True)
class EvalReport:
    commands: int = 0
    tools_right: int = 0
    expected_calls: int = 0
    arguments_right: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tool_accuracy(self) -> float:
        return self.tools_right / self.commands if self.commands else 0.0

    @property
    def argument_accuracy(self) -> float:
        return self.arguments_right / self.expected_calls if self.expected_calls else 0.0

    def public(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "tool_accuracy": round(self.tool_accuracy, 4),
            "argument_accuracy": round(self.argument_accuracy, 4),
            "failures": self.failures,
        }


def load_commands(path: Path | None = None) -> list[Command]:
    """The scored set: a JSON list of {"text", "calls": [{"name", "arguments"}]}; default the bundled one."""
    text = path.read_text() if path else resources.files(__package__).joinpath("commands.json").read_text()
    return [
        Command(entry["text"], tuple((call["name"], dict(call.get("arguments") or {})) for call in entry["calls"]))
        for entry in json.loads(text)
    ]


async def evaluate(
    assistant: AssistantService, caller: Caller, commands: list[Command], *, spoken: bool = False
) -> EvalReport:
    report = EvalReport()
    models = assistant.runner.models
    for command in commands:
        if assistant.home is not None:
            assistant.home.reset()
        called: list[tuple[str, dict[str, Any]]] = []
        heard: list[str] = []

        async def collect(
            event: TurnEvent, into: list[tuple[str, dict[str, Any]]] = called, texts: list[str] = heard
        ) -> None:
            if event.kind == "tool_call" and "confirmed" not in event.data:
                into.append((event.data["name"], _arguments(event.data["arguments"])))
            elif event.kind == "transcript":
                texts.append(event.data["text"])

        session = await assistant.create_session(caller)
        error = None
        try:
            if spoken:
                audio = await models.speak(caller.key, command.text)
                given = TurnInput(audio=audio, filename=f"command.{models.settings.speech_format}")
            else:
                given = TurnInput(text=command.text)
            await assistant.turn(session.id, given, caller, collect)
        except GatewayError as exc:
            error = exc.message
        finally:
            await assistant.store.delete(session.id, caller.key_id)
        report.commands += 1
        report.expected_calls += len(command.calls)
        names_right = Counter(name for name, _ in called) == Counter(name for name, _ in command.calls)
        report.tools_right += names_right
        wrong_arguments = []
        for name, expected in command.calls:
            if any(got_name == name and _matches(expected, got) for got_name, got in called):
                report.arguments_right += 1
            else:
                wrong_arguments.append(name)
        if error or not names_right or wrong_arguments:
            report.failures.append(
                {
                    "text": command.text,
                    "expected": [{"name": n, "arguments": a} for n, a in command.calls],
                    "called": [{"name": n, "arguments": a} for n, a in called],
                    **({"heard": heard[0]} if spoken and heard else {}),
                    **({"error": error} if error else {}),
                }
            )
    return report


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"(not JSON)": text[:200]}
    return value if isinstance(value, dict) else {"(not an object)": value}


def _matches(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    return all(_same(value, got.get(key)) for key, value in expected.items())


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return expected.strip().lower() == got.strip().lower()
    return bool(expected == got) and type(expected) is type(got)
