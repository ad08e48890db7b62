"""Word error rate after the usual normalisation, for comparing transcripts with the text that was spoken.

word_error_rate("Platform seven.", " platform 7")                        # 0.0
word_error_rate("about sixty thousand dollars", "About $60,000.")        # 0.0

Whisper writes numbers as digits ("$60,000", "35%", "21st") where a script says them in words, so digits are
spelled out before comparing, as openai-whisper's English normaliser does the other way round.
"""

from __future__ import annotations

import re

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
    "twelve": "twelfth",
}  # fmt: skip
_CURRENCIES = {"$": "dollars", "£": "pounds", "€": "euros"}
_SPELLING = {"centre": "center", "colour": "color", "metres": "meters", "litres": "liters"}
# An optional currency sign, digits with thousands separators, decimals, then %, an ordinal suffix or a short
# scale ("2.5m"; a scale written out, "2 million", stays in the text as it is).
_NUMBER = re.compile(r"([$£€])?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%|st\b|nd\b|rd\b|th\b)?(?:(k|m|bn)\b)?")
_SCALE_WORDS = {"k": "thousand", "m": "million", "bn": "billion"}


def spell(number: int) -> str:
    """An integer in words: 85000 -> "eighty five thousand" (no "and", no hyphens)."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{spell(high)} {name}" + (f" {spell(rest)}" if rest else "")
    raise AssertionError(number)  # unreachable: every number >= 100 has a scale


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


def _words_for(match: re.Match[str]) -> str:
    currency, digits, decimals, suffix, scale = match.groups()
    words = spell(int(digits.replace(",", "")))
    if decimals:
        words += " point " + " ".join(_ONES[int(d)] for d in decimals[1:])
    if suffix in ("st", "nd", "rd", "th"):
        words = _ordinal(words)
    if scale:
        words += " " + _SCALE_WORDS[scale]
    if suffix == "%":
        words += " percent"
    if currency:
        words += " " + _CURRENCIES[currency]
    return f" {words} "


def normalise(text: str) -> list[str]:
    """Lower case, digits spelled out, no punctuation, hyphens as spaces, British spellings American."""
    text = _NUMBER.sub(_words_for, text.lower())
    words = re.sub(r"[^a-z' ]+", " ", text.replace("-", " ")).split()
    out = [_SPELLING.get(word.strip("'"), word.strip("'")) for word in words]
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
