"""The amounts a piece of text states, in digits or in words, so a value's numbers can be checked against its quote.

    amounts("£85,000 a year")                          # {85000.0}
    amounts("eighty-five thousand pounds")             # {85000.0}
    amounts("one hundred and twenty thousand dollars") # {120000.0}
    amounts("1.2m"), amounts("twelve k")               # {1200000.0}, {12000.0}
    amounts("two point four million")                  # {2400000.0}

A model writes an amount in digits ("$120,000") where the call says it in words ("one hundred and twenty thousand
dollars"). grounding.py keeps a value whose numbers all appear among its quote's: a budget the call never states
has no quote that states it, whatever words the model quotes beside it.
"""

from __future__ import annotations

import re

__all__ = ["amounts"]

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
)
_UNITS = {word: number for number, word in enumerate(_UNIT_WORDS.split())}
_TENS = {
    word: 10 * number
    for number, word in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)
}
_SCALES = {"thousand": 1e3, "k": 1e3, "grand": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9, "twelfth": 12}
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+")


def amounts(text: str) -> set[float]:
    """Every amount `text` states; empty when it states none."""
    words = _TOKEN.findall(re.sub(r"(?<=\d)[,\u202f\u00a0 ](?=\d{3}\b)", "", text.lower()).replace("-", " "))
    found: set[float] = set()
    i = 0
    while i < len(words):
        value, i = _number(words, i)
        if value is not None:
            found.add(value)
        else:
            i += 1
    return found


def _number(words: list[str], i: int) -> tuple[float | None, int]:
    """The number that starts at words[i] and the index after it; (None, i) when none starts there."""
    total, current, seen, decimal = 0.0, 0.0, False, None
    j = i
    while j < len(words):
        word = words[j]
        if word[0].isdigit():
            if seen and current:  # "12 15": two numbers
                break
            current += float(word)
            seen = True
        elif word in _UNITS and decimal is None:
            current += _UNITS[word]
            seen = True
        elif word in _TENS:
            current += _TENS[word]
            seen = True
        elif word in _ORDINALS and not seen:
            current, seen = _ORDINALS[word], True
            j += 1
            break
        elif word == "point" and seen and j + 1 < len(words) and words[j + 1] in _UNITS:
            decimal = f"{_UNITS[words[j + 1]]}"
            j += 2
            current += float(f"0.{decimal}")
            continue
        elif word == "hundred" and (seen or (j > i and words[j - 1] == "a")):
            current = (current or 1) * 100
            seen = True
        elif word in _SCALES and (seen or (j > i and words[j - 1] == "a")):
            total += (current or 1) * _SCALES[word]
            current, seen = 0.0, True
        elif word in ("a", "an") and not seen and words[j + 1 : j + 2] in (["hundred"], ["thousand"], ["million"]):
            pass
        elif word == "and" and seen and words[j + 1 : j + 3] == ["a", "half"]:  # "one and a half million"
            current += 0.5
            j += 3
            continue
        elif word == "and" and seen and j + 1 < len(words) and (words[j + 1] in _UNITS or words[j + 1] in _TENS):
            pass
        else:
            break
        j += 1
    if not seen:
        return None, i
    return total + current, max(j, i + 1)
