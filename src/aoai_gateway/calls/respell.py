"""Names of the call's vocabulary written as it spells them where speech recognition misheard them.

    respell("Thanks, Calum. You're at Fair Burn Farms?", ["Callum Fairbairn", "Fairbairn Farms"])
    # "Thanks, Callum. You're at Fairbairn Farms?"

Whisper primed with a vocabulary (vocabulary.py) still mishears names it has never heard said, a small model most
of all: "Come Otso" for Kgomotso, "Hamid Rezay" for Hamid Rezaei. The vocabulary says how the names of this call
are written, so a stretch of the transcript that sounds like one of them is written as it: the model then reads
the name right, and the quote it gives is in the transcript it read.

What is compared: each name of the vocabulary, and each capitalised word of five letters or more in a name of
several (a call says a first name, or a company's first word, alone), against every run of the transcript's words
one shorter to one longer than it (speech recognition splits and joins words), within a segment. A run matches when
it is capitalised somewhere (a name as Whisper writes one) and not made of words the call also says in lower case
(ordinary words, as "Leads" starting a sentence in a call that speaks of sales leads), holds none of the small words
that join a sentence ("at", "from", "the": a name does not run over them), and is alike enough, the mean of two
similarities: letter for letter, and by sound (`sound_key`: spellings of one sound made one, vowels made one).
Matches are written best first, never overlapping; a run already written as the name is left as it is. Each change
is returned with what was heard, so the document can show it.

What this cannot do: a name heard as ordinary lower-case words ("we believe not Manchester"), or so unlike its
written form that it is not `THRESHOLD` alike ("Katherine" for Katarzyna); and with a vocabulary of many similar
names a misheard one may be written as its neighbour, which is why only the names of the recording's own
vocabulary are compared (the prompt's), not a whole CRM.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from dataclasses import dataclass

from .words import words

__all__ = ["THRESHOLD", "Respelling", "respell", "sound_key"]

THRESHOLD = 0.8
MIN_PART_LETTERS = 5  # a word of a name compared alone: shorter ones ("Park", "Cole") match too much
MAX_NAMES = 64  # the prompt's names are a few dozen at most: the comparison is names x words

# Words that join a sentence: a run holding one is no name, unless a name of the vocabulary holds it ("Bank of").
_JOINERS = frozenset(
    {"a", "an", "and", "at", "by", "for", "from", "i", "im", "in", "is", "it", "its", "of", "on", "or", "our", "so"}
    | {"that", "the", "this", "to", "we", "with", "you", "your"}
)
_SOUNDS = (
    ("ph", "f"),
    ("gh", "g"),
    ("kh", "k"),
    ("ck", "k"),
    ("qu", "kw"),
    ("q", "k"),
    ("x", "ks"),
    ("z", "s"),
    ("dg", "j"),
    ("th", "t"),
    ("wh", "w"),
    ("sch", "sk"),
    ("y", "i"),
)
_SOFT_C = re.compile(r"c(?=[eiy])")
_VOWELS = re.compile(r"[aeiou]+")
_DOUBLES = re.compile(r"(.)\1+")
_LENGTHS = (0.75, 1.34)  # a run's letters against the name's: no more than a letter in four more or fewer
_WRITTEN_AS_A_NAME = re.compile(r"[\w .,'\u2019&()/-]+")  # letters, digits, what names and companies hold
_POSSESSIVE = re.compile(r"['\u2019]s$")


@dataclass(frozen=True, slots=True)
class Respelling:
    heard: str  # the transcript's words as speech recognition wrote them
    name: str  # as the vocabulary writes it
    score: float


def sound_key(letters: str) -> str:
    """Folded letters by sound: spellings of one sound made one ("ph" f, soft "c" s, "z" s), doubles and vowels
    made one ("Fairbairn" and "Fairburn" both "farbarn")."""
    key = letters
    for spelled, sound in _SOUNDS:
        key = key.replace(spelled, sound)
    key = _SOFT_C.sub("s", key).replace("c", "k")
    key = _VOWELS.sub("a", key)
    return _DOUBLES.sub(r"\1", key)


def respell(text: str, names: list[str] | tuple[str, ...]) -> tuple[str, list[Respelling]]:
    """`text` with each stretch that sounds like a vocabulary name written as that name, and what was changed."""
    targets = _Targets.of(names)
    if not targets.all or not text:
        return text, []
    found, spans = words(text)
    if not found:
        return text, []
    joiners = _JOINERS - {word for target in targets.all for word in words(target.name)[0]}
    ordinary = {word for word, (start, _) in zip(found, spans, strict=True) if text[start].islower()}
    candidates: list[tuple[float, int, int, _Target]] = []
    longest = max(target.size for target in targets.all) + 1
    for first in range(len(found)):
        for last in range(first, min(first + longest, len(found))):
            run = found[first : last + 1]
            if run[-1] in joiners:
                break
            start, end = spans[first][0], spans[last][1]
            if not any(text[s].isupper() for s, _ in spans[first : last + 1]) or ordinary.issuperset(run):
                continue
            heard = _POSSESSIVE.sub("", text[start:end])
            letters = "".join(run)
            if heard != text[start:end]:
                letters = letters.removesuffix("s")
            sound = ""
            for target in targets.near(letters, last - first + 1):
                if letters == target.letters:
                    if target.part:  # a word of a name, right: the whole name may still be misheard around it
                        continue
                    score = 1.0 + (heard == target.name)  # a whole name already right keeps its place
                else:
                    sound = sound or sound_key(letters)
                    score = target.alike(letters, sound)
                if score >= THRESHOLD:
                    candidates.append((score, start, start + len(heard), target))
    taken: list[tuple[int, int, Respelling]] = []
    for score, start, end, target in sorted(candidates, key=lambda c: (-c[0], -(c[2] - c[1]), c[1])):
        if any(start < other_end and other_start < end for other_start, other_end, _ in taken):
            continue
        taken.append((start, end, Respelling(text[start:end], target.name, round(min(score, 1.0), 3))))
    taken = [(start, end, change) for start, end, change in taken if change.heard != change.name]
    if not taken:
        return text, []
    taken.sort(key=lambda t: t[0])
    parts, at = [], 0
    for start, end, change in taken:
        parts += [text[at:start], change.name]
        at = end
    parts.append(text[at:])
    return "".join(parts), [change for _, _, change in taken]


class _Target:
    """A name or a word of one, with its matchers (difflib keeps what it learnt of the name between runs)."""

    __slots__ = ("by_letter", "by_sound", "letters", "name", "part", "size", "sound")

    def __init__(self, name: str, letters: str, size: int, *, part: bool = False) -> None:
        self.name, self.letters, self.sound, self.size = name, letters, sound_key(letters), size
        self.part = part  # a word of a longer name
        self.by_letter = difflib.SequenceMatcher(None, b=letters, autojunk=False)
        self.by_sound = difflib.SequenceMatcher(None, b=self.sound, autojunk=False)

    def alike(self, letters: str, sound: str) -> float:
        """Mean of the letter and the sound similarity of a run of words to this name (0 when plainly apart)."""
        self.by_letter.set_seq1(letters)
        # The mean reaches THRESHOLD only if each reaches 2 * THRESHOLD - 1: bounds first, the full match after.
        if self.by_letter.quick_ratio() < 2 * THRESHOLD - 1:
            return 0.0
        self.by_sound.set_seq1(sound)
        return (self.by_letter.ratio() + self.by_sound.ratio()) / 2


@dataclass(frozen=True)
class _Targets:
    all: list[_Target]  # by length of letters
    lengths: list[int]

    @classmethod
    def of(cls, names: list[str] | tuple[str, ...]) -> _Targets:
        """Each name (the last MAX_NAMES), and each capitalised word of a name of several words long enough."""
        targets: dict[str, _Target] = {}
        for name in names[-MAX_NAMES:]:  # the most specific names come last (vocabulary.py)
            folded, _ = words(name)
            letters = "".join(folded)
            if len(letters) < 3 or not _WRITTEN_AS_A_NAME.fullmatch(name):  # never markup or controls into a call
                continue
            targets.setdefault(name, _Target(name, letters, len(folded)))
            if len(folded) < 2:
                continue
            for part in re.findall(r"[^\W\d_][\w'\u2019-]*", name):
                part_letters = "".join(words(part)[0])
                if part[0].isupper() and len(part_letters) >= MIN_PART_LETTERS and part not in targets:
                    targets[part] = _Target(part, part_letters, 1, part=True)
        ordered = sorted(targets.values(), key=lambda target: len(target.letters))
        return cls(ordered, [len(target.letters) for target in ordered])

    def near(self, letters: str, size: int) -> list[_Target]:
        """The names a run of `size` words could be: a word more or fewer, letters within _LENGTHS of its own."""
        low = bisect.bisect_left(self.lengths, math.ceil(len(letters) / _LENGTHS[1]))
        high = bisect.bisect_right(self.lengths, math.floor(len(letters) / _LENGTHS[0]))
        return [target for target in self.all[low:high] if abs(size - target.size) <= 1]
