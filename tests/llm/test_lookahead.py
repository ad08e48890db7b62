"""Jump-forward decoding (llm/lookahead.py): what a strict schema forces is always what the answer holds next, it is
written without sampling, the grammar stays the authority, and answers stay valid seed after seed."""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.calls.grounding import grounded_schema
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.llm.lookahead import Lookahead, fixed_object
from aoai_gateway.llm.model import LocalChatModel
from aoai_gateway.llm.request import GenerationRequest
from aoai_gateway.llm.shapes import answer_shape

from ..servers import AsgiServer
from .conftest import llm_settings
from .test_local_grammar import ASK, CONTACT, TOOLS

GROUNDED = grounded_schema(ExtractionSchema.load(None).schema)  # what the calls pipeline asks a model for
HOSTILE = ['"}, "value": "x"}', "\\", "\\u0022", "{[", "é漢字🙂", "\n\t", ",:", "null", '\\"', ""]


def _document(schema: dict[str, Any], rng: random.Random) -> Any:
    """A random document valid against `schema` (the shapes the grounded and contact schemas use)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    chosen = rng.choice(kinds)
    if chosen == "null":
        return None
    if chosen == "object":
        return {key: _document(sub, rng) for key, sub in schema["properties"].items()}
    if chosen == "array":
        return [_document(schema["items"], rng) for _ in range(rng.randint(0, schema.get("maxItems", 3)))]
    if chosen == "integer":
        return rng.randint(-5, 500)
    if chosen == "boolean":
        return rng.random() < 0.5
    return rng.choice(HOSTILE) + rng.choice(["", "a", " b "])


@pytest.mark.parametrize("schema", [GROUNDED, CONTACT], ids=["grounded", "contact"])
def test_what_is_forced_is_always_what_the_answer_holds_next(schema: dict[str, Any]) -> None:
    rng = random.Random(7)
    for _ in range(150):
        text = json.dumps(_document(schema, rng), ensure_ascii=rng.random() < 0.5)
        ahead, at, forced_chars = Lookahead(schema), 0, 0
        while at < len(text):
            forced = ahead.forced()
            assert text.startswith(forced, at), (text, at, forced)
            step = len(forced) or 1  # the forced text, or one character the model chose
            ahead.feed(text[at : at + step])
            forced_chars += len(forced)
            at += step
        assert ahead.forced() == "" and ahead._done and not ahead._lost
        assert forced_chars >= len(text) * 0.1 or len(text) < 40


def test_the_grounded_answer_is_mostly_forced_between_its_values() -> None:
    ahead = Lookahead(GROUNDED)
    assert ahead.forced() == '{"summary":'  # trailing white space is the model's: it writes it with the value
    ahead.feed('{"summary": "A buyer."')
    assert ahead.forced() == ', "agent_name": {"quote":'
    ahead.feed(', "agent_name": {"quote": null')
    assert ahead.forced() == ', "value":'
    ahead.feed(', "value": null')
    assert ahead.forced() == '}, "seller_company": {"quote":'


def test_the_models_own_white_space_is_read_past() -> None:
    document = _document(GROUNDED, random.Random(3))
    for text in (json.dumps(document, indent=2), json.dumps(document, separators=(",", ":"))):
        ahead = Lookahead(GROUNDED)
        for char in text:
            ahead.feed(char)
            ahead.forced()
        assert ahead._done and not ahead._lost


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},  # others allowed
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
        },  # b optional
        {"anyOf": [{"type": "object"}, {"type": "string"}]},
        {"type": ["object", "null"], "properties": {"a": {}}, "required": ["a"], "additionalProperties": False},
        {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        {"type": "string"},
    ],
)
def test_schemas_that_leave_a_choice_force_nothing(schema: dict[str, Any]) -> None:
    assert fixed_object(schema) is None
    assert Lookahead(schema).forced() == ""


ODD_KEY = '\u0000"}'  # a key with a control character and JSON's own punctuation


@pytest.mark.parametrize(
    ("schema", "forced"),
    [
        ({"type": "object", "properties": [1, 2], "required": "x", "additionalProperties": False}, ""),
        ({"type": "array", "items": "nope", "maxItems": "3"}, "["),
        ({"type": "object", "properties": {"a": 7}, "required": ["a"], "additionalProperties": False}, '{"a":'),
        (
            {"type": "object", "properties": {ODD_KEY: {}}, "required": [ODD_KEY], "additionalProperties": False},
            "{" + json.dumps(ODD_KEY) + ":",
        ),
    ],
)
def test_a_clients_odd_schema_never_breaks_the_scanner(schema: dict[str, Any], forced: str) -> None:
    """The schema is the client's: odd keywords force nothing wrong, a key with quotes and controls is forced as
    JSON escapes it, and text of any kind (a raw control character in a key too) is read without an error."""
    assert Lookahead(schema).forced() == forced
    for text in ('{"a": 1}', '[{"\x00"}": 5}]', "[]", '{"x": [1, {"y": null}], "z": "}"}', '{"\x01": 2}'):
        ahead = Lookahead(schema)
        for char in text:
            assert isinstance(ahead.forced(), str)
            ahead.feed(char)


def test_text_that_is_not_the_schemas_stops_the_forcing_for_good() -> None:
    for text in ('{"agent_name": ', "[1, 2]", '{"summary": "x"} {', '{"summary" "x"', "}"):
        ahead = Lookahead(GROUNDED)
        ahead.feed(text)
        assert ahead._lost and ahead.forced() == ""
        ahead.feed(', "value": null}')
        assert ahead.forced() == ""


def test_forcing_costs_little_per_token_on_a_deep_schema() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for level in range(60):
        deep = {
            "type": "object",
            "properties": {f"k{level}": deep},
            "required": [f"k{level}"],
            "additionalProperties": False,
        }
    ahead = Lookahead(deep)
    began = time.process_time()
    forced = ahead.forced()
    ahead.feed(forced)
    for _ in range(2_000):
        ahead.forced()
    assert forced.count("{") == 60 and time.process_time() - began < 30  # generous: a busy machine


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Iterator[LocalChatModel]:
    model = LocalChatModel(str(tiny_model), llm_settings(tiny_model, {"jump_forward": True}).local_llm)
    assert model.jump_forward
    yield model
    model.close()


def _ignore(_: str) -> None:
    pass


def _answer(model: LocalChatModel, request: GenerationRequest) -> Any:
    return model.generate(model.prompt(request), request, answer_shape(request), _ignore, lambda: False)


def test_a_gibberish_model_writes_valid_answers_with_the_structure_forced(model: LocalChatModel) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": CONTACT}}
    named = {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    for seed in range(6):
        request = GenerationRequest.from_chat(
            {"messages": ASK, "response_format": response_format, "temperature": 1.0, "seed": seed}
        )
        outcome = _answer(model, request)
        assert outcome.finish_reason == "stop" and 0 < outcome.forced_tokens < outcome.completion_tokens
        jsonschema.validate(json.loads(outcome.text), CONTACT)
        call = GenerationRequest.from_chat({"messages": ASK, **named, "temperature": 1.0, "seed": seed})
        reply = _answer(model, call)
        assert reply.forced_tokens > 0
        jsonschema.validate(json.loads(reply.text), TOOLS[0]["function"]["parameters"])


def test_off_nothing_is_forced_and_a_wrong_lookahead_cannot_break_the_grammar(
    model: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": CONTACT}}
    request = GenerationRequest.from_chat({"messages": ASK, "response_format": response_format, "temperature": 0})
    monkeypatch.setattr(model, "jump_forward", False)
    plain = _answer(model, request)
    assert plain.forced_tokens == 0
    jsonschema.validate(json.loads(plain.text), CONTACT)
    monkeypatch.setattr(model, "jump_forward", True)
    monkeypatch.setattr(Lookahead, "forced", lambda self: '"]]} nonsense')  # what the grammar refuses at once
    refused = _answer(model, request)
    assert refused.forced_tokens == 0 and refused.text == plain.text  # sampled as if no lookahead, token for token
    wrong = copy.deepcopy(CONTACT)
    wrong["properties"] = dict(reversed(list(wrong["properties"].items())))  # the grammar's order is not this
    monkeypatch.undo()
    shape = answer_shape(request)
    mixed = model.generate(
        model.prompt(request), request, type(shape)(shape.grammar, shape.tools, schema=wrong), _ignore, lambda: False
    )
    jsonschema.validate(json.loads(mixed.text), CONTACT)


def test_turned_on_in_the_config_the_openai_sdk_gets_valid_structured_answers(tiny_model: Path) -> None:
    settings = llm_settings(tiny_model, {"jump_forward": True})
    assert settings.local_llm.jump_forward and not llm_settings(tiny_model).local_llm.jump_forward  # off by default
    with AsgiServer(create_app(settings)) as server, OpenAI(base_url=f"{server.url}/v1", api_key="k") as client:
        for seed in range(3):
            reply = client.chat.completions.create(
                model="tiny-local",
                messages=ASK,  # type: ignore[arg-type]
                response_format={"type": "json_schema", "json_schema": {"name": "contact", "schema": CONTACT}},
                seed=seed,
                temperature=1.0,
            )
            jsonschema.validate(json.loads(reply.choices[0].message.content or ""), CONTACT)
