"""A worked example that travels with the schema: one short call and its answer, shown to the model before the call.

    example = Example.of(schema)            # None when the schema has no "x-example"; SchemaError when it is wrong
    example.render(grounded=True)           # the call's lines and its answer, as the system message shows them

A small local model fills the fields far better when it has seen one call done right: the customer is the person
the agent calls, not the agent; a corrected place is the corrected one; every product is an item; a budget keeps
its currency. The example belongs to the schema (`"x-example": {"transcript": [lines], "answer": {...}}`, the
answer in the grounded form, each value with its quote), so a user's own schema brings its own or none. It is
checked when the schema loads: its plain values must be valid against the schema and every quote must be found in
its transcript, so the example never teaches the model to invent. It sits in the system message, before the call:
the same for every call, so a local model's prompt cache evaluates it once per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import SchemaError
from .grounding import field_kind, ground
from .schema import ExtractionSchema
from .transcript import Segment, Transcript

__all__ = ["Example"]


@dataclass(frozen=True)
class Example:
    lines: tuple[str, ...]
    answer: dict[str, Any]  # grounded: each field {"quote", "value"} (list fields: a list of them)
    plain: dict[str, Any]  # the values alone, as an ungrounded answer gives them

    @classmethod
    def of(cls, schema: ExtractionSchema) -> Example | None:
        given = schema.schema.get("x-example")
        if given is None:
            return None
        where = "x-example"
        lines = given.get("transcript") if isinstance(given, dict) else None
        answer = given.get("answer") if isinstance(given, dict) else None
        if not (isinstance(lines, list) and lines and all(isinstance(line, str) and line.strip() for line in lines)):
            raise SchemaError(f"{where}: `transcript` must be a list of the call's lines (non-empty strings)")
        if not isinstance(answer, dict) or set(answer) != set(schema.fields):
            raise SchemaError(f"{where}: `answer` must give every field of the schema: {', '.join(schema.fields)}")
        plain = {name: _value(schema.schema["properties"][name], given) for name, given in answer.items()}
        problem = schema.problem(plain)
        if problem is not None:
            raise SchemaError(f"{where}: the answer's values are not valid against the schema: {problem}")
        transcript = Transcript.of([Segment(line, None, None) for line in lines])
        evidence = ground(answer, schema, transcript).evidence
        missing = [
            name
            for name, notes in evidence.items()
            if not all(note["found"] for note in (notes if isinstance(notes, list) else [notes]))
        ]
        if missing:
            raise SchemaError(f"{where}: quotes not found in its transcript for: {', '.join(missing)}")
        return cls(tuple(lines), answer, plain)

    def render(self, *, grounded: bool) -> str:
        shown = self.answer if grounded else self.plain
        call = "\n".join(self.lines)
        return (
            "An example call and its answer (a different call from the one you will be given):\n"
            f"<example_call>\n{call}\n</example_call>\n"
            f"Its answer:\n{json.dumps(shown, ensure_ascii=False)}"
        )


def _value(prop: Any, given: Any) -> Any:
    """A field of the grounded answer as a plain value: the value of {"quote", "value"} (of each item of a list)."""
    kind = field_kind(prop)
    if kind == "plain":
        return given
    if kind == "list":
        if not isinstance(given, list):
            raise SchemaError(f"x-example: a list field's answer must be a list of {{quote, value}}: {given!r}")
        return [_pair_value(item) for item in given]
    return _pair_value(given)


def _pair_value(given: Any) -> Any:
    if not isinstance(given, dict) or set(given) != {"quote", "value"}:
        raise SchemaError(f'x-example: each grounded value must be {{"quote": ..., "value": ...}}: {given!r}')
    return given["value"]
