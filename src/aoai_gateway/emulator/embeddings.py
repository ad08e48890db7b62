"""`embeddings`: deterministic unit vectors, the same text always giving the same vector.

    reply = create_embeddings(call)   # {"object": "list", "data": [{"embedding": [...], "index": 0}], ...}

The vector of a text is drawn from a generator seeded with the text's hash and scaled to length 1, so
cosine similarity is 1 for equal texts and near 0 otherwise. Width: `dimensions` when given, else 3072 for
models named `*-3-large` and 1536 for the rest; `ada-002` models refuse `dimensions` as Azure does.
`encoding_format: base64` packs little-endian float32 values, as the OpenAI API does.
"""

from __future__ import annotations

import array
import base64
import hashlib
import math
import random
import sys
from functools import lru_cache
from typing import Any

from .call import Call, Reply
from .errors import InvalidRequest
from .tokens import count_tokens
from .validation import optional_choice, optional_int

__all__ = ["create_embeddings"]

_MAX_INPUTS = 2048


def create_embeddings(call: Call) -> Reply:
    body = call.json
    inputs = _inputs(body.get("input"))
    model = call.deployment.model
    dimensions = optional_int(body, "dimensions", minimum=1)
    if dimensions is not None and "ada-002" in model:
        raise InvalidRequest(
            "This model does not support specifying dimensions.", param="dimensions", code="invalid_value"
        )
    native = 3072 if "3-large" in model else 1536
    if dimensions is not None and dimensions > native:
        raise InvalidRequest(
            f"Invalid 'dimensions': this model supports at most {native}.",
            param="dimensions",
            code="invalid_value",
        )
    encoding = optional_choice(body, "encoding_format", ("float", "base64"), "float")
    width = dimensions or native
    data = []
    tokens = 0
    for index, (key, count) in enumerate(inputs):
        tokens += count
        vector = _vector(key, width)
        embedding: Any = _base64(vector) if encoding == "base64" else list(vector)
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return Reply.json({"object": "list", "data": data, "model": model, "usage": usage}, tokens=tokens)


def _inputs(raw: Any) -> list[tuple[str, int]]:
    """Each input as (hash key, token count); token arrays hash their numbers."""
    if raw is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    items: list[Any] = raw if isinstance(raw, list) else [raw]
    if items and all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        items = [items]  # one token array, not many one-token inputs
    if not items or len(items) > _MAX_INPUTS:
        raise InvalidRequest(
            f"Invalid 'input': expected between 1 and {_MAX_INPUTS} inputs, got {len(items)}.", param="input"
        )
    inputs = []
    for item in items:
        if isinstance(item, str) and item:
            inputs.append((item, count_tokens(item)))
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            inputs.append((",".join(map(str, item)), len(item)))
        else:
            raise InvalidRequest(
                "Invalid 'input': each input must be a non-empty string or a non-empty array of tokens.",
                param="input",
                code="invalid_value",
            )
    return inputs


@lru_cache(maxsize=1024)
def _vector(key: str, width: int) -> tuple[float, ...]:
    # Cached: benchmarks embed the same few texts over and over.
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    draw = random.Random(seed).random
    raw = [draw() * 2.0 - 1.0 for _ in range(width)]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return tuple(value / norm for value in raw)


def _base64(vector: tuple[float, ...]) -> str:
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
