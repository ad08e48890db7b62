"""The emulator's token rule: approximate, deterministic, and cheap.

    count_tokens("Hello wonderful world")   # -> 7: Hell o / wond erfu l / worl d

One token per started group of four non-blank characters of each blank-separated word: "Hello" is 2
("Hell", "o"), "a" is 1, "wonderful" is 3. Real tokenizers give about the same count for English
prose, and callers that budget tokens need a number that moves with the text, not an exact one.
Truncation (`max_tokens`) cuts at those same pieces, so a truncated reply has exactly `limit` tokens.
"""

from __future__ import annotations

import re

__all__ = ["count_tokens", "split_for_stream", "truncate"]

_TOKEN = re.compile(r"\S{1,4}")
# The same pieces with the blanks before them, so that joining pieces gives back the text.
_PIECE = re.compile(r"\s*\S{1,4}")
_WORD = re.compile(r"\s*\S+(?:\s+\Z)?")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` tokens of `text`, and whether anything was cut.

    truncate("one two three", 2)  # -> ("one two", True)
    """
    end = 0
    for taken, match in enumerate(_PIECE.finditer(text)):
        if taken == limit:
            return text[:end], True
        end = match.end()
    return text, False


def split_for_stream(text: str, words_per_piece: int = 3) -> list[str]:
    """Pieces of a few words each whose concatenation is exactly `text` (stream deltas).

    split_for_stream("a b c d", 2)  # -> ["a b", " c d"]
    """
    words = _WORD.findall(text)
    if not words:
        return [text] if text else []
    return ["".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
