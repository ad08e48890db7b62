"""The worked examples a schema carries (`x-examples`): checked at load, shown before the call, never sent as schema."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from aoai_gateway.calls.errors import SchemaError
from aoai_gateway.calls.example import Example
from aoai_gateway.calls.extract import Extractor
from aoai_gateway.calls.models import ChatReply
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript

BUNDLED = ExtractionSchema.load(None)


def with_example(change: Any, index: int = 0) -> dict[str, Any]:
    """The bundled schema with one of its examples changed by `change(example)`."""
    schema = copy.deepcopy(BUNDLED.schema)
    change(schema["x-examples"][index])
    return schema


def test_the_bundled_examples_are_valid_and_every_quote_is_in_its_call() -> None:
    bought, declined = Example.all(BUNDLED)
    assert len(bought.lines) >= 8 and BUNDLED.problem(bought.plain) is None
    assert bought.plain["customer_name"] == "Tomasz Nowak" and bought.plain["location"] == "Bath"
    assert bought.plain["products_of_interest"] == ["standing desks", "monitor arms"]
    assert declined.plain["sentiment"] == "negative"
    assert declined.plain["budget"] is declined.plain["next_steps"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["answer"]["company"].update(quote="your team at Falcon Data"), "quotes not found.*company"),
        (lambda e: e["answer"]["products_of_interest"][1].update(quote="a forklift"), "products_of_interest"),
        (lambda e: e["answer"].pop("budget"), "every field"),
        (lambda e: e["answer"]["sentiment"].update(value="keen"), "not valid against the schema"),
        (lambda e: e["answer"].update(location="Bath"), "quote.*value"),
        (lambda e: e.update(transcript="one long string"), "list of the call's lines"),
        (lambda e: e.update(transcript=["fine", ""]), "list of the call's lines"),
    ],
)
def test_a_wrong_example_stops_the_schema_from_loading(change: Any, message: str) -> None:
    schema = ExtractionSchema.from_dict(with_example(change))
    with pytest.raises(SchemaError, match=r"x-examples\[0\]: .*" + message):
        Example.all(schema)
    with pytest.raises(SchemaError, match=message):  # the extractor would show it: it refuses it as well
        Extractor(None, schema, model="m")  # type: ignore[arg-type]


class _Recorder:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answer = answer

    async def chat(self, request: dict[str, Any]) -> ChatReply:
        self.sent.append(request)
        return ChatReply(json.dumps(self.answer), None, "m", "d", 10, 5, "stop", 0.01)


def test_the_examples_must_be_a_list_of_calls() -> None:
    for wrong in ({"transcript": ["a"]}, [], "call"):
        schema = ExtractionSchema.from_dict({**BUNDLED.schema, "x-examples": wrong})
        with pytest.raises(SchemaError, match="x-examples"):
            Example.all(schema)


@pytest.mark.parametrize("grounded", [True, False])
async def test_the_examples_are_shown_before_the_call_and_never_sent_as_schema(grounded: bool) -> None:
    examples = Example.all(BUNDLED)
    models = _Recorder(examples[0].answer if grounded else examples[0].plain)
    extractor = Extractor(models, BUNDLED, model="m", grounded=grounded)  # type: ignore[arg-type]
    await extractor.extract("Hello, this is Sam from Acme.\nHi Sam, Jo Bloggs here.")
    request = models.sent[0]
    system, user = request["messages"]
    assert "Example 1:\n<example_call>\nHello, this is Dana Whitfield" in system["content"]
    assert "Example 2:\n<example_call>\nGood morning, my name is Lucas Ferreira" in system["content"]
    answers = [json.loads(part.split("\n", 1)[0]) for part in system["content"].split("Its answer:\n")[1:]]
    assert answers == [example.answer if grounded else example.plain for example in examples]
    assert "Tomasz" not in user["content"] and user["content"].endswith("Hi Sam, Jo Bloggs here.\n</transcript>")
    sent_schema = json.dumps(request["response_format"])
    assert "x-examples" not in sent_schema and "x-grounded" not in sent_schema and "Tomasz" not in sent_schema


def test_a_schema_without_an_example_shows_none() -> None:
    schema = copy.deepcopy(BUNDLED.schema)
    del schema["x-examples"]
    extractor = Extractor(None, ExtractionSchema.from_dict(schema), model="m")  # type: ignore[arg-type]
    assert "example" not in extractor.system.lower()


def test_the_model_reads_a_segment_a_line() -> None:
    transcript = Transcript.of(
        [Segment(" Hello,  this is Sam. ", 0.0, 1.0), Segment("", 1.0, 2.0), Segment("Hi.", 2, 3)]
    )
    assert transcript.lines == "Hello, this is Sam.\nHi."
    assert transcript.text == "Hello, this is Sam. Hi."
