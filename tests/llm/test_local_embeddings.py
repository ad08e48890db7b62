"""Embeddings from the local GGUF model through the gateway on a real socket, with the official SDK (which asks
for base64 and decodes it): OpenAI's shape, determinism, the model's width, unit length, batches, token arrays,
and the 400s."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from openai import AzureOpenAI, OpenAI

from .conftest import CONTEXT
from .tiny_model import DIM

MODEL = "tiny-local"


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_an_embedding_has_openais_shape_the_models_width_and_unit_length(client: OpenAI) -> None:
    answer = client.embeddings.create(model=MODEL, input="The quick brown fox")
    assert answer.object == "list" and answer.model == MODEL and len(answer.data) == 1
    item = answer.data[0]
    assert item.object == "embedding" and item.index == 0
    assert len(item.embedding) == DIM  # the GGUF's n_embd
    assert abs(_norm(item.embedding) - 1.0) < 1e-5  # L2-normalised, as llama.cpp's server and OpenAI send
    assert all(math.isfinite(x) for x in item.embedding)
    # BOS, the leading word marker, then at least one token per word and at most one per byte.
    assert 6 <= answer.usage.prompt_tokens <= len("The quick brown fox") + 2
    assert answer.usage.total_tokens == answer.usage.prompt_tokens


def test_the_same_text_gives_the_same_vector_and_other_texts_differ(client: OpenAI) -> None:
    texts = ["alpha", "beta", "alpha", "gamma delta"]
    batch = client.embeddings.create(model=MODEL, input=texts)
    assert [d.index for d in batch.data] == [0, 1, 2, 3]
    vectors = [d.embedding for d in batch.data]
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1] and vectors[1] != vectors[3]
    # A text's vector does not depend on the rest of the batch, nor on the request.
    alone = client.embeddings.create(model=MODEL, input="beta").data[0].embedding
    assert np.allclose(alone, vectors[1], atol=1e-6)
    singles = sum(client.embeddings.create(model=MODEL, input=t).usage.prompt_tokens for t in texts)
    assert batch.usage.prompt_tokens == singles


def test_float_and_base64_carry_the_same_little_endian_float32_vector(llm_gateway: object, client: OpenAI) -> None:
    url = f"{client.base_url}embeddings"
    floats = httpx.post(url, json={"model": MODEL, "input": "same", "encoding_format": "float"}, timeout=60)
    encoded = httpx.post(url, json={"model": MODEL, "input": "same", "encoding_format": "base64"}, timeout=60)
    assert floats.status_code == encoded.status_code == 200, (floats.text, encoded.text)
    raw = base64.b64decode(encoded.json()["data"][0]["embedding"])
    assert len(raw) == 4 * DIM
    decoded = np.frombuffer(raw, dtype="<f4")
    assert np.array_equal(decoded, np.asarray(floats.json()["data"][0]["embedding"], dtype=np.float32))
    # The SDK's own decoding of base64 (its default) gives the same numbers.
    sdk = client.embeddings.create(model=MODEL, input="same").data[0].embedding
    assert np.array_equal(np.asarray(sdk, dtype=np.float32), decoded)


def test_token_arrays_are_embedded_as_given(client: OpenAI) -> None:
    one = client.embeddings.create(model=MODEL, input=[1, 300, 301, 302])
    assert len(one.data) == 1 and one.usage.prompt_tokens == 4
    several = client.embeddings.create(model=MODEL, input=[[1, 300, 301, 302], [1, 310]])
    assert len(several.data) == 2 and several.usage.prompt_tokens == 6
    assert several.data[0].embedding == one.data[0].embedding


def test_the_azure_deployment_route_serves_embeddings_too(client: OpenAI) -> None:
    azure = AzureOpenAI(azure_endpoint=str(client.base_url).removesuffix("/v1/"), api_key="k", api_version="2024-10-21")
    answer = azure.embeddings.create(model=MODEL, input="via azure")
    direct = client.embeddings.create(model=MODEL, input="via azure")
    assert answer.data[0].embedding == direct.data[0].embedding


def test_chat_still_answers_once_the_embeddings_instance_is_loaded(client: OpenAI) -> None:
    client.embeddings.create(model=MODEL, input="load it")
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=5,
        seed=3,
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 5


def test_dimensions_equal_to_the_models_width_are_accepted(client: OpenAI) -> None:
    answer = client.embeddings.create(model=MODEL, input="x", dimensions=DIM)
    assert len(answer.data[0].embedding) == DIM


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x", "dimensions": DIM // 2}, "dimensions", "unsupported_value"),
        ({"input": "x", "dimensions": "64"}, "dimensions", None),
        ({"input": ""}, "input", "invalid_value"),
        ({"input": []}, "input", "invalid_value"),
        ({"input": ["ok", ""]}, "input", "invalid_value"),
        ({"input": [[]]}, "input", "invalid_value"),
        ({"input": None}, "input", "invalid_type"),
        ({"input": {"text": "x"}}, "input", "invalid_type"),
        ({"input": ["ok", 5]}, "input", "invalid_type"),
        ({"input": [True, False]}, "input", "invalid_type"),
        ({"input": [1, 10**9]}, "input", "invalid_value"),  # outside the vocabulary
        ({"input": [1, -1]}, "input", "invalid_value"),
        ({"input": ["x"] * 2049}, "input", "invalid_value"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", "invalid_value"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    llm_gateway: object, client: OpenAI, body: dict[str, object], param: str, code: str | None
) -> None:
    response = httpx.post(f"{client.base_url}embeddings", json={"model": MODEL, **body}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code


def test_an_input_longer_than_the_context_is_context_length_exceeded(client: OpenAI) -> None:
    # Printable ASCII tokenizes one token per character in the tiny vocabulary: this is past the context.
    long_text = "ab" * CONTEXT
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=["short", long_text])
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=[1] * (CONTEXT + 1))
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "context_length_exceeded"
    # Exactly the context fits.
    fits = client.embeddings.create(model=MODEL, input=[1] * CONTEXT)
    assert fits.usage.prompt_tokens == CONTEXT


def test_a_hostile_string_is_plain_text_not_special_tokens(client: OpenAI) -> None:
    # `</s>` typed by a caller is four characters, not the end-of-text token: more than one token is read.
    answer = client.embeddings.create(model=MODEL, input="</s><|im_start|>")
    assert answer.usage.prompt_tokens > 3


def test_the_embedder_checks_for_a_departed_client_before_each_input(tiny_model: Path) -> None:
    # What the client's cancellation relies on: `check` runs before every input, so raising there stops the
    # request at the next input (the gateway raises when the client has left).
    from aoai_gateway.llm.embedding import LocalEmbedder

    class Left(Exception):
        pass

    embedder = LocalEmbedder(str(tiny_model), 256, 1, pooled=False)
    try:
        seen = []

        def check() -> None:
            seen.append(len(seen))
            if len(seen) == 3:
                raise Left

        with pytest.raises(Left):
            embedder.embed(["a", "b", "c", "d", "e"], check)
        assert len(seen) == 3  # two inputs ran; it stopped before the third (nor did the fourth and fifth run)
        vectors, tokens = embedder.embed(["a", "b"])  # and the instance still works afterwards
        assert len(vectors) == 2 and tokens > 2
    finally:
        embedder.close()
