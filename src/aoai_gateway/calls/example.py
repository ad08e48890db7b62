"""Worked examples that travel with the schema: short calls and their answers, shown to the model before the call.

    examples = Example.all(schema)          # () when the schema has no "x-examples"; SchemaError when one is wrong
    render(examples, grounded=True)         # the calls' lines and their answers, as the system message shows them

A small local model fills the fields far better when it has seen one call done right: the customer is the person
the agent calls, not the agent; a corrected place is the corrected one; every product is an item; a budget keeps
its currency; a call that declines has no budget or next step. The examples belong to the schema (`"x-examples":
[{"transcript": [lines], "answer": {...}}, ...]`, each answer in the grounded form, each value with its quote), so
a user's own schema brings its own or none. They are checked when the schema loads: the plain values must be valid
against the schema and every quote must be found in its own call, so an example never teaches the model to
invent. They sit in the system message, before the call: the same for every call, so a local model's prompt
cache evaluates them once per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import SchemaError
from .grounding import field_kind, ground
from .schema import ExtractionSchema
from .transcript import Segment, Transcript

__all__ = ["Example", "render"]


@dataclass(frozen=True)
class Example:
    lines: tuple[str, ...]
    answer: dict[str, Any]  # grounded: each field {"quote", "value"} (list fields: a list of them)
    plain: dict[str, Any]  # the values alone, as an ungrounded answer gives them

    @classmethod
    def all(cls, schema: ExtractionSchema) -> tuple[Example, ...]:
        given = schema.schema.get("x-examples")
        if given is None:
            return ()
        if not isinstance(given, list) or not given:
            raise SchemaError("x-examples: must be a list of {transcript, answer}")
        return tuple(cls._one(schema, item, f"x-examples[{i}]") for i, item in enumerate(given))

    @classmethod
    def _one(cls, schema: ExtractionSchema, given: Any, where: str) -> Example:
        lines = given.get("transcript") if isinstance(given, dict) else None
        answer = given.get("answer") if isinstance(given, dict) else None
        if not (isinstance(lines, list) and lines and all(isinstance(line, str) and line.strip() for line in lines)):
            raise SchemaError(f"{where}: `transcript` must be a list of the call's lines (non-empty strings)")
        if not isinstance(answer, dict) or set(answer) != set(schema.fields):
            raise SchemaError(f"{where}: `answer` must give every field of the schema: {', '.join(schema.fields)}")
        plain = {name: _value(schema.schema["properties"][name], value, where) for name, value in answer.items()}
        problem = schema.problem(plain)
        if problem is not None:
            raise SchemaError(f"{where}: the answer's values are not valid against the schema: {problem}")
        transcript = Transcript.of([Segment(line, None, None) for line in lines])
        evidence = ground(answer, schema, transcript).evidence
        missing = [
            name
            for name, notes in evidence.items()
            if not all(
                note["found"] and note.get("quote_found", True)
                for note in (notes if isinstance(notes, list) else [notes])
            )
        ]
        if missing:
            raise SchemaError(f"{where}: quotes not found in its transcript for: {', '.join(missing)}")
        return cls(tuple(lines), answer, plain)


def render(examples: tuple[Example, ...], *, grounded: bool) -> str:
    """The examples as the system message shows them: each call between tags, then its answer."""
    shown = []
    for number, example in enumerate(examples, 1):
        call = "\n".join(example.lines)
        answer = json.dumps(example.answer if grounded else example.plain, ensure_ascii=False)
        shown.append(f"Example {number}:\n<example_call>\n{call}\n</example_call>\nIts answer:\n{answer}")
    return "Example calls and their answers (other calls than the one you will be given):\n\n" + "\n\n".join(shown)


def _value(prop: Any, given: Any, where: str) -> Any:
    """A field of the grounded answer as a plain value: the value of {"quote", "value"} (of each item of a list)."""
    kind = field_kind(prop)
    if kind == "plain":
        return given
    if kind == "list":
        if not isinstance(given, list):
            raise SchemaError(f"{where}: a list field's answer must be a list of {{quote, value}}: {given!r}")
        return [_pair_value(item, where) for item in given]
    return _pair_value(given, where)


def _pair_value(given: Any, where: str) -> Any:
    if not isinstance(given, dict) or set(given) != {"quote", "value"}:
        raise SchemaError(f'{where}: each grounded value must be {{"quote": ..., "value": ...}}: {given!r}')
    return given["value"]
