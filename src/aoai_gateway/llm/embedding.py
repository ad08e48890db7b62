"""Embeddings from a local GGUF model: what `/v1/embeddings` asks, the vectors, and OpenAI's answer shape.

request = EmbeddingRequest.from_body(body, dimensions=model.n_embd)   # InvalidRequest (400) for bad input
vectors, tokens = model.embedder().embed(request.inputs)               # in the model's worker thread
body = render_embeddings(request, "qwen-local", vectors, tokens)

llama.cpp computes embeddings only in a context created with `embeddings` on and a pooling type, and such a
context does not sample (its logits are not kept), so the chat instance cannot serve both: a second `Llama` on
the same GGUF is loaded the first time an embeddings request needs it. The weights are memory-mapped, so both
instances read the same pages; the second costs its own context (KV cache and compute buffers), not a second copy
of the model. It runs on the chat model's single worker, so the two never compute at once and share one queue.

Pooling: the GGUF's own (an embedding model declares one), else the mean of the tokens' last hidden states (a
chat model declares none). Each vector is scaled to unit length (L2), as llama.cpp's server and OpenAI send them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
import orjson
from llama_cpp import Llama

from ..errors import InvalidRequest

MAX_INPUTS = 2048  # OpenAI's limit on the inputs of one request
_FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    inputs: list[str | list[int]]  # a text, or token ids as given
    encoding_format: str = "float"

    @classmethod
    def from_body(cls, body: dict[str, Any], *, dimensions: int) -> EmbeddingRequest:
        fmt = body.get("encoding_format")
        if fmt is None:
            fmt = "float"
        if fmt not in _FORMATS:
            raise InvalidRequest(
                "'encoding_format' must be 'float' or 'base64'.", param="encoding_format", code="invalid_value"
            )
        asked = body.get("dimensions")
        if asked is not None:
            if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
                raise InvalidRequest("'dimensions' must be a positive integer.", param="dimensions")
            if asked != dimensions:
                raise InvalidRequest(
                    f"This local model's embeddings have {dimensions} dimensions and cannot be shortened to "
                    f"{asked}: omit 'dimensions' or set it to {dimensions}.",
                    param="dimensions",
                    code="unsupported_value",
                )
        return cls(_inputs(body.get("input")), fmt)


def _inputs(value: Any) -> list[str | list[int]]:
    """OpenAI's four forms: a string, an array of strings, an array of token ids, an array of such arrays."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(_is_token(t) for t in value):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidRequest(
            "'input' must be a string, an array of strings, or an array of token arrays.",
            param="input",
            code="invalid_type",
        )
    if not items:
        raise InvalidRequest("'input' must not be empty.", param="input", code="invalid_value")
    if len(items) > MAX_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_INPUTS} items.", param="input", code="invalid_value")
    for index, item in enumerate(items):
        ok = isinstance(item, str) or (isinstance(item, list) and all(_is_token(t) for t in item))
        if not ok:
            raise InvalidRequest(
                f"'input[{index}]' must be a string or an array of token ids.", param="input", code="invalid_type"
            )
        if not item:
            raise InvalidRequest(f"'input[{index}]' must not be empty.", param="input", code="invalid_value")
    return items


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LocalEmbedder:
    """The embeddings instance of one GGUF (see the module's docstring); used from the model's worker only."""

    def __init__(self, path: str, context_tokens: int, threads: int, pooled: bool) -> None:
        self._llm = Llama(
            model_path=path,  # memory-mapped: the chat instance's pages, not a second copy
            embedding=True,
            # The whole input in one micro-batch: pooling is computed per micro-batch (a split input came out
            # with a different vector), and a model with non-causal attention needs it anyway. Flash attention
            # keeps that affordable: with the tiny test model at 8192 tokens the compute buffer was 152 MiB
            # with it and 1302 MiB without (the attention matrix is never materialised), same vector to 1e-7.
            n_ctx=context_tokens,
            n_batch=context_tokens,
            n_ubatch=context_tokens,
            flash_attn=True,
            n_threads=threads,
            n_threads_batch=threads,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED if pooled else llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            verbose=False,
        )
        self.context_tokens = self._llm.n_ctx()
        self.dimensions = self._llm.n_embd()
        self._vocab_size = self._llm.n_vocab()

    def tokens(self, item: str | list[int], index: int) -> list[int]:
        """The ids `item` stands for, checked against the vocabulary and the context (400 otherwise)."""
        if isinstance(item, str):
            # Plain text: a string that spells a special token (`</s>`) is read as its characters.
            ids = self._llm.tokenize(item.encode(), add_bos=True, special=False)
        else:
            ids = item
            bad = next((t for t in ids if not 0 <= t < self._vocab_size), None)
            if bad is not None:
                raise InvalidRequest(
                    f"'input[{index}]' holds the token id {bad}, outside this model's vocabulary "
                    f"(0-{self._vocab_size - 1}).",
                    param="input",
                    code="invalid_value",
                )
        if len(ids) > self.context_tokens:
            raise InvalidRequest(
                f"This model's maximum context length is {self.context_tokens} tokens, however you requested "
                f"{len(ids)} tokens in 'input[{index}]'. Please reduce your prompt.",
                param="input",
                code="context_length_exceeded",
            )
        return ids

    def embed(
        self, inputs: list[str | list[int]], check: Callable[[], None] = lambda: None
    ) -> tuple[list[np.ndarray], int]:
        """One unit-length float32 vector per input, and the tokens read. Each input is computed alone (its own
        decode from an empty cache), so a text's vector does not depend on what else the request holds. `check`
        runs before each input and raises to stop (the client left)."""
        batches = [self.tokens(item, i) for i, item in enumerate(inputs)]  # every 400 before any work
        # llama-cpp-python's embed() takes no token ids: its context and batch, driven as embed() drives them.
        ctx, batch = self._llm._ctx, self._llm._batch
        vectors = []
        for ids in batches:
            check()
            ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
            batch.reset()  # type: ignore[no-untyped-call]
            batch.add_sequence(ids, 0, True)
            ctx.decode(batch)
            pointer = llama_cpp.llama_get_embeddings_seq(ctx.ctx, 0)
            vector = np.ctypeslib.as_array(pointer, shape=(self.dimensions,)).astype(np.float32)
            norm = float(np.linalg.norm(vector))
            vectors.append(vector / norm if norm > 0 and math.isfinite(norm) else vector)
        ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
        batch.reset()  # type: ignore[no-untyped-call]
        return vectors, sum(len(ids) for ids in batches)

    def close(self) -> None:
        self._llm.close()


def render_embeddings(request: EmbeddingRequest, model: str, vectors: list[np.ndarray], tokens: int) -> bytes:
    """OpenAI's `list` of `embedding` objects; base64 is the little-endian float32 bytes, as OpenAI encodes it."""
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": base64.b64encode(vector.astype("<f4").tobytes()).decode()
            if request.encoding_format == "base64"
            else [float(x) for x in vector],
        }
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})
