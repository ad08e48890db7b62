"""Word error rate after the usual normalisation, for comparing transcripts with the text that was spoken.

word_error_rate("Platform seven.", " platform 7")   # 0.0
"""

from __future__ import annotations

import re

_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_SPELLING = {"centre": "center", "colour": "color", "metres": "meters", "litres": "liters"}


def normalise(text: str) -> list[str]:
    """Lower case, no punctuation, hyphens as spaces, small numbers as words, British spellings American."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    out = []
    for word in words:
        word = word.strip("'")
        if word.isdigit() and int(word) < len(_NUMBERS):
            word = _NUMBERS[int(word)]
        out.append(_SPELLING.get(word, word))
    return [word for word in out if word]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by Levenshtein distance over words."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1] / max(len(ref), 1)
