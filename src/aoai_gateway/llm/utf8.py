"""Keep a grammar-constrained answer valid UTF-8, which llama.cpp's grammar alone does not.

guard = Utf8Guard(llm)                 # once per model: which tokens can never be part of valid UTF-8
guard.reset(); guard.feed(piece)       # per answer, per token
llm.generate(..., logits_processor=LogitsProcessorList([guard]))

llama.cpp matches a grammar against code points decoded from the tokens' bytes, and its decoder accepts what
UTF-8 forbids: overlong forms (E0 80-9F .., F0 80-8F ..), surrogates (ED A0-BF ..), code points past U+10FFFF
(F4 90-BF .., F5-FF) and the bytes C0, C1. A model that samples such bytes (a random-weight one does, a trained
one rarely) would get them past the grammar, and then one "character" of a `maxLength` string decodes as three
replacement characters. This guard forbids, before sampling, every token that could never be valid, and after a
lead byte the continuation bytes that would make it one of those forms.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from llama_cpp import Llama

# A lead byte -> the range its second byte may NOT take (the rest of 80-BF is fine).
_SECOND_BYTE_FORBIDDEN = {0xE0: (0x80, 0x9F), 0xED: (0xA0, 0xBF), 0xF0: (0x80, 0x8F), 0xF4: (0x90, 0xBF)}


class Utf8Guard:
    def __init__(self, llm: Llama) -> None:
        pieces = [llm.detokenize([token]) for token in range(llm.n_vocab())]
        self._never = np.array([t for t, piece in enumerate(pieces) if not _valid_fragment(piece)], dtype=np.intp)
        self._after: dict[int, npt.NDArray[np.intp]] = {}
        for lead, (low, high) in _SECOND_BYTE_FORBIDDEN.items():
            ids = [t for t, piece in enumerate(pieces) if piece and low <= piece[0] <= high]
            self._after[lead] = np.array(ids, dtype=np.intp)
        self._tail = b""

    def reset(self) -> None:
        self._tail = b""

    def feed(self, piece: bytes) -> None:
        """The bytes of the token just sampled."""
        self._tail = (self._tail + piece)[-4:]

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        scores[self._never] = -np.inf
        if len(self._tail) >= 1 and self._tail[-1] in self._after:
            scores[self._after[self._tail[-1]]] = -np.inf
        return scores


def _valid_fragment(piece: bytes) -> bool:
    """Whether `piece` can be part of valid UTF-8: continuation bytes may open it and a sequence may stay open at
    its end, but nothing in between may be invalid."""
    start = 0
    while start < len(piece) and start < 3 and 0x80 <= piece[start] <= 0xBF:
        start += 1
    try:
        piece[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        return error.reason == "unexpected end of data"
    return True
