"""Spelled-out names and letters or digits read one by one, written back as the word they spell.

    resolve_spelling("The surname is Adeyemi, A, D, E, Y, E, M, I.")   # "The surname is Adeyemi, Adeyemi."
    resolve_spelling("that's S-M-I-T-H")                              # "that's Smith"
    resolve_spelling("C, A, double L, U, M")                          # "Callum"
    resolve_spelling("the code is K 7 4 Q")                           # "the code is K74Q"

Callers spell what speech recognition gets wrong (names), and Whisper writes the spelling down faithfully as
single letters; the model reading the transcript then has to glue them back together, which small models do
badly. The rule is deterministic: a run of single letters or digits (three or more apart from spaces or commas,
two or more joined by hyphens, "double L" counting twice) becomes one word. A letters-only run of four or more
with a vowel is a name ("Smith"); shorter or vowel-less runs are acronyms ("IBM", "HSBC"); runs with digits are
codes, upper case ("K74Q", "07700"). Nothing else in the text changes, and the original is kept beside it.
"""

from __future__ import annotations

import re

__all__ = ["resolve_spelling"]

_UNIT = r"(?:double[ \t]+[A-Za-z]|[A-Za-z0-9])(?![A-Za-z0-9'\u2019])"
_START = r"(?<![A-Za-z0-9'\u2019])"
# Three or more units apart from spaces, commas or full stops ("A, D, E", "s m i t h", "K. 7. 4."), or two or more
# joined by hyphens ("S-M-I-T-H", "A-B").
_RUN = re.compile(
    rf"{_START}{_UNIT}(?:(?:[ \t]*[,.][ \t]*|[ \t]+){_UNIT}){{2,}}"
    rf"|{_START}{_UNIT}(?:-{_UNIT})+"
)
_VOWELS = frozenset("aeiouy")


def resolve_spelling(text: str) -> str:
    """`text` with each spelled-out run written as the word it spells; unchanged when there is none."""
    return _RUN.sub(_word, text)


def _word(match: re.Match[str]) -> str:
    units = re.findall(r"double[ \t]+([A-Za-z])|([A-Za-z0-9])", match[0])
    letters = "".join(doubled * 2 if doubled else single for doubled, single in units)
    if not set(letters.lower()) - {"a", "i"}:  # "I, a, I": words, not a spelling
        return match[0]
    if not letters.isalpha():
        return letters.upper()
    if len(letters) >= 4 and _VOWELS & set(letters.lower()):
        return letters.capitalize()
    return letters.upper()
