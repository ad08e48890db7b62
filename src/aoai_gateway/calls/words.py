"""Words as the grounding compares them: Unicode compatibility forms, case, accents, apostrophes and punctuation
folded away, each word with where it lies in the text.

    words("We're in Ålesund.")     # (["were", "in", "alesund"], [(0, 5), (6, 8), (9, 16)])
    same_name("Priya", "Priya Raman")   # True: all of one's words are among the other's
    sentences("Yes. 9.5 it is.")        # [(0, 4), (5, 15)]
    run_of(["big", "pump"], ["a", "big", "pump"])   # True: the one's words, in a row, among the other's
"""

from __future__ import annotations

import re
import unicodedata

# A capitalised word as a name is written: a capital (Latin, accents included), then letters, apostrophes, hyphens.
CAPITALISED = r"[A-Z\u00c0-\u024f][\w'\u2019-]*"
# Months and days, folded: never a person's name, always a time.
MONTHS_AND_DAYS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november"}
    | {"december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
_SENTENCE = re.compile(r"\S.*?(?:[.?!]+(?=\s|$)|$)", re.DOTALL)  # to a . ? ! before a space: "9.5" stays one
_APOSTROPHES = frozenset("'\u2018\u2019\u02bc`\u00b4")


def words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The normalised words of `text` and where each lies in it: case, accents, apostrophes and punctuation gone."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    current: list[str] = []
    start = 0
    for i, char in enumerate(text):
        if char in _APOSTROPHES:  # "we're" is one word, "were" when folded
            continue
        folded = fold(char)
        if folded:
            if not current:
                start = i
            current.append(folded)
        elif current:
            words.append("".join(current))
            spans.append((start, i))
            current = []
    if current:
        words.append("".join(current))
        spans.append((start, len(text)))
    return words, spans


def fold(char: str) -> str:
    """The letters and digits `char` stands for, lower case, accents gone; "" for anything else."""
    if char.isascii():
        return char.lower() if char.isalnum() else ""
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed.casefold() if c.isalnum() and not unicodedata.combining(c))


def same_name(a: str, b: str) -> bool:
    """The same words, or all of one's words among the other's ("Priya" and "Priya Raman")."""
    mine, theirs = set(words(a)[0]), set(words(b)[0])
    return bool(mine and theirs and (mine <= theirs or theirs <= mine))


def sentences(text: str) -> list[tuple[int, int]]:
    """Where each sentence of `text` lies: to a full stop, question or exclamation mark before a space."""
    return [(found.start(), found.end()) for found in _SENTENCE.finditer(text)]


def run_of(inner: list[str] | tuple[str, ...], outer: list[str] | tuple[str, ...]) -> bool:
    """Whether the words `inner` come one after another in `outer`."""
    size, wanted = len(inner), tuple(inner)
    return any(tuple(outer[at : at + size]) == wanted for at in range(len(outer) - size + 1))
