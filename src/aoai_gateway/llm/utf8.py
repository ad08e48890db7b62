"""Keep a grammar-constrained answer valid UTF-8, which llama.cpp's grammar alone does not.

guard = Utf8Guard(llm)                 # once per model: which tokens can never be part of valid UTF-8
guard.allows(token, after=b"{\xe0")    # may this token follow the answer's bytes so far?
guard.forbid(logits, after=b"{\xe0")   # the same for every token: the forbidden ones' logits become -inf

llama.cpp matches a grammar against code points decoded from the tokens' bytes, and its decoder accepts what
UTF-8 forbids: overlong forms (E0 80-9F .., F0 80-8F ..), surrogates (ED A0-BF ..), code points past U+10FFFF
(F4 90-BF .., F5-FF) and the bytes C0, C1. A model that samples such bytes (a random-weight one does, a trained
one rarely) would get them past the grammar, and then one "character" of a `maxLength` string decodes as three
replacement characters. This guard forbids every token that could never be valid, and after a lead byte the
continuation bytes that would make it one of those forms. It holds no state of its own: the caller passes the
answer's bytes so far (only the last one matters).
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
        self._never = np.array([not _valid_fragment(piece) for piece in pieces], dtype=np.bool_)
        self._after: dict[int, npt.NDArray[np.bool_]] = {}
        for lead, (low, high) in _SECOND_BYTE_FORBIDDEN.items():
            self._after[lead] = np.array([bool(piece) and low <= piece[0] <= high for piece in pieces])

    def allows(self, token: int, after: bytes) -> bool:
        """Whether `token` may follow `after`, the answer's bytes so far."""
        if self._never[token]:
            return False
        forbidden = self._after.get(after[-1]) if after else None
        return forbidden is None or not forbidden[token]

    def forbid(self, logits: npt.NDArray[np.single], after: bytes) -> None:
        """Set to -inf the logit of every token that may not follow `after` (one per token id)."""
        logits[self._never] = -np.inf
        forbidden = self._after.get(after[-1]) if after else None
        if forbidden is not None:
            logits[forbidden] = -np.inf


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
