"""Sampling a token under a grammar the way llama.cpp's own `common_sampler_sample` does: grammar last.

with TokenSampler(llm, grammar, guard, temperature=0.7, top_p=0.9, seed=42) as sampler:
    token = sampler.sample()           # from the logits of the last token `llm` evaluated
    sampler.accept(token, piece)       # piece: the token's bytes

The token is drawn from the model's free distribution first (greedy at temperature 0; otherwise top_p, then the
temperature, then a draw from the seeded generator: llama-cpp-python's chain with our parameters). Only that one
token is then checked, against the UTF-8 guard (utf8.py, its bytes in Python) and against the grammar (a
one-candidate array through the grammar sampler). A trained model's choice usually fits, so the grammar no longer
runs over the whole vocabulary (151k tokens for Qwen) for every token. When the choice is refused, the whole
vocabulary goes through the guard and the grammar and the token is drawn again from the survivors: the greedy
answer is exactly the constrained argmax, and at a temperature the chosen token follows the constrained
distribution (drawn first from all of it, refused, drawn again from the allowed: p(t) + (1 - Z) p(t) / Z = p(t) / Z
for an allowed t); only top_p < 1 differs, as in llama.cpp, since it trims the free distribution first. The same
seed draws the same tokens.

The grammar sampler and the chain are native llama.cpp objects: `close` (the `with` block's end, also on a cancel
or an error) frees them.
"""

from __future__ import annotations

import ctypes
import math
from types import TracebackType

import numpy as np
from llama_cpp import (
    Llama,
    llama_get_logits_ith,
    llama_sampler_accept,
    llama_sampler_apply,
    llama_sampler_chain_add,
    llama_sampler_chain_default_params,
    llama_sampler_chain_init,
    llama_sampler_free,
    llama_sampler_init_dist,
    llama_sampler_init_grammar,
    llama_sampler_init_greedy,
    llama_sampler_init_temp,
    llama_sampler_init_top_p,
    llama_token_data,
    llama_token_data_array,
)

from .utf8 import Utf8Guard

# llama_token_data as numpy sees it: the candidates' logits are filled in with one copy.
_CANDIDATE = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


class TokenSampler:
    """The sampler of one answer; `grammar` (GBNF) None samples free text (and the guard is not consulted)."""

    def __init__(
        self, llm: Llama, grammar: str | None, guard: Utf8Guard, *, temperature: float, top_p: float, seed: int
    ) -> None:
        self._llm = llm
        self._guard = guard
        self._vocab = llm.n_vocab()
        self._tail = b""  # the answer's last byte: what the guard needs
        self._chain = llama_sampler_chain_init(llama_sampler_chain_default_params())
        if temperature == 0.0:
            llama_sampler_chain_add(self._chain, llama_sampler_init_greedy())
        else:  # llama-cpp-python's order; its top_k 0, typical 1, min_p 0 and neutral penalties do nothing
            llama_sampler_chain_add(self._chain, llama_sampler_init_top_p(top_p, 1))
            llama_sampler_chain_add(self._chain, llama_sampler_init_temp(temperature))
            llama_sampler_chain_add(self._chain, llama_sampler_init_dist(seed & 0xFFFFFFFF))
        self._closed = False
        self._grammar = None
        if grammar is not None:
            self._grammar = llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
            if not self._grammar:  # llama.cpp printed why; our grammars come from shapes.py and always parse
                llama_sampler_free(self._chain)
                raise ValueError("llama.cpp refused the answer's grammar")
        buffer = (llama_token_data * self._vocab)()
        self._candidates = np.ctypeslib.as_array(buffer).view(_CANDIDATE)
        self._buffer = buffer
        self._ids = np.arange(self._vocab, dtype=np.intc)

    def __enter__(self) -> TokenSampler:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._grammar is not None:
            llama_sampler_free(self._grammar)
        llama_sampler_free(self._chain)

    def sample(self) -> int:
        """The next token, from the logits of the last token evaluated."""
        token = self._draw(grammar=False)
        if self.fits(token):
            return token
        return self._draw(grammar=True)  # refused: again, from the tokens the guard and the grammar allow

    def accept(self, token: int, piece: bytes) -> None:
        """`token` (whose bytes are `piece`) is the answer's next: the grammar moves past it."""
        if self._grammar is not None:
            llama_sampler_accept(self._grammar, token)
        llama_sampler_accept(self._chain, token)
        self._tail = (self._tail + piece)[-1:]

    def _draw(self, *, grammar: bool) -> int:
        logits = np.ctypeslib.as_array(llama_get_logits_ith(self._llm.ctx, -1), shape=(self._vocab,))
        candidates = self._candidates
        candidates["id"] = self._ids  # the chain sorts them in place: every draw starts over
        candidates["logit"] = logits
        array = llama_token_data_array(
            data=ctypes.cast(self._buffer, ctypes.POINTER(llama_token_data)), size=self._vocab, selected=-1
        )
        if grammar:
            self._guard.forbid(candidates["logit"], self._tail)
            llama_sampler_apply(self._grammar, ctypes.byref(array))
        llama_sampler_apply(self._chain, ctypes.byref(array))
        return int(array.data[array.selected].id)

    def fits(self, token: int) -> bool:
        """Whether `token` may come next: the UTF-8 guard and the grammar allow it (always, with no grammar)."""
        if self._grammar is None:
            return True
        if not self._guard.allows(token, self._tail):
            return False
        single = llama_token_data(token, 1.0, 0.0)
        array = llama_token_data_array(data=ctypes.pointer(single), size=1, selected=-1)
        llama_sampler_apply(self._grammar, ctypes.byref(array))
        return not math.isinf(single.logit)  # the grammar refuses a token by setting its logit to -inf
