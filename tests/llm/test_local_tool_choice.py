"""`tool_choice: "auto"` and parallel calls under the grammar, seed after seed: an "auto" answer is either plain text
or exactly one valid call of a declared tool, and "required" with `parallel_tool_calls` is 1 to 4 valid calls.

The gibberish model here favours `{` (tiny_model.py's `favour`), so "auto" answers fall on both sides of the
grammar's choice and each side is checked, not only the one a random model happens to take.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion

from aoai_gateway.app import create_app

from ..servers import AsgiServer
from .conftest import llm_settings
from .test_local_grammar import ASK, PARAMETERS, TOOLS
from .tiny_model import write_tiny_model

SEEDS = range(1, 17)


@pytest.fixture(scope="module")
def brace_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    model = write_tiny_model(tmp_path_factory.mktemp("brace-llm") / "brace.gguf", favour="{")
    with (
        AsgiServer(create_app(llm_settings(model))) as server,
        OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0, timeout=120) as client,
    ):
        yield client


def _ask(client: OpenAI, seed: int, **extra: Any) -> ChatCompletion:
    return client.chat.completions.create(  # type: ignore[call-overload, no-any-return]
        **{"model": "tiny-local", "messages": ASK, "tools": TOOLS, "max_tokens": 300, "seed": seed, **extra}
    )


def _kind(answer: ChatCompletion) -> str:
    """ "text" or "call", after checking that the answer is wholly one of them."""
    choice = answer.choices[0]
    calls = choice.message.tool_calls or []
    if calls:
        assert choice.message.content is None and len(calls) == 1, choice
        assert choice.finish_reason == "tool_calls" and calls[0].type == "function"
        function = calls[0].function  # type: ignore[union-attr]
        jsonschema.validate(json.loads(function.arguments), PARAMETERS[function.name])
        return "call"
    text = choice.message.content
    assert isinstance(text, str) and text, choice
    assert text[0] not in "{< \t\r\n", text  # cannot be read as (the start of) a call
    assert choice.finish_reason in ("stop", "length")
    return "text"


def test_auto_answers_are_either_text_or_one_valid_call(brace_client: OpenAI) -> None:
    kinds = [_kind(_ask(brace_client, seed, tool_choice="auto")) for seed in SEEDS]
    assert {"text", "call"} <= set(kinds), kinds  # both alternatives of the grammar were taken


def test_auto_is_the_default_with_tools_and_holds_with_a_plain_model(client: OpenAI) -> None:
    for seed in range(1, 7):
        _kind(_ask(client, seed))  # no tool_choice: "auto"


def test_a_streamed_auto_answer_matches_the_whole_one(brace_client: OpenAI) -> None:
    for seed in (1, 2, 3, 4):
        whole = _ask(brace_client, seed, tool_choice="auto")
        chunks = list(_ask(brace_client, seed, tool_choice="auto", stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        calls = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        if _kind(whole) == "call":
            expected = whole.choices[0].message.tool_calls[0].function  # type: ignore[index, union-attr]
            assert [(d.function.name, d.function.arguments) for d in calls] == [  # type: ignore[union-attr]
                (expected.name, expected.arguments)
            ]
            assert text == ""
        else:
            assert calls == [] and text == whole.choices[0].message.content


def test_required_with_parallel_tool_calls_gives_one_to_four_valid_calls(brace_client: OpenAI) -> None:
    counts = []
    for seed in SEEDS:
        answer = _ask(brace_client, seed, tool_choice="required", parallel_tool_calls=True, max_tokens=600)
        choice = answer.choices[0]
        if choice.finish_reason == "length":  # four long calls may pass max_tokens: cut off, not a call
            continue
        calls = choice.message.tool_calls or []
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        assert 1 <= len(calls) <= 4 and len({c.id for c in calls}) == len(calls)
        for call in calls:
            jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])  # type: ignore[union-attr]
        counts.append(len(calls))
    assert len(counts) >= len(SEEDS) // 2 and max(counts) > 1, counts


def test_streamed_parallel_calls_carry_their_indexes(brace_client: OpenAI) -> None:
    for seed in SEEDS:
        chunks = list(
            _ask(brace_client, seed, tool_choice="required", parallel_tool_calls=True, max_tokens=600, stream=True)
        )
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        if len(deltas) > 1:
            assert [d.index for d in deltas] == list(range(len(deltas)))
            return
    pytest.fail("no seed gave several calls")


def test_without_parallel_tool_calls_required_is_exactly_one_call(brace_client: OpenAI) -> None:
    for seed in range(1, 7):
        answer = _ask(brace_client, seed, tool_choice="required", parallel_tool_calls=False)
        assert len(answer.choices[0].message.tool_calls or []) == 1


def test_parallel_tool_calls_must_be_a_boolean(llm_gateway: AsgiServer, tmp_path: Path) -> None:
    body = {"model": "tiny-local", "messages": ASK, "tools": TOOLS, "parallel_tool_calls": "yes"}
    response = httpx.post(f"{llm_gateway.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "parallel_tool_calls"
