"""Where a quote lies in a transcript: word for word, or the most alike window of its words.

    match = find_quote("about nine thousand pounds", transcript.text)   # QuoteMatch(score, start, end) or None
    searcher = Searcher(transcript.text)       # one transcript normalised once, searched for many quotes
    searcher.find("Callum Fairbairn")          # QuoteMatch(1.0, ...) when said word for word

The quote is looked up after the same normalisation on both sides (words.py: Unicode compatibility forms, case,
accents, apostrophes, punctuation and whitespace), first as a run of whole words, then fuzzily: the best window
of transcript words must be at least `FUZZY_THRESHOLD` similar, character by character, to the quote. Only windows
holding at least half of the quote's words where the quote puts them are compared (a passage 90% alike shares that
much), the `MAX_WINDOWS` holding most, so an invented quote costs a look-up per word, not a comparison with every
window of a long call.

Why 0.9, measured on calls-dev (12 calls; each quote its sentence's first 12 words, as the emulator quotes):
- quotes that are not in the call: each script sentence of the 11 other calls against this call's transcript
  (3058 pairs, from tiny.en and from the scripts alike) scores at most 0.78 in 99% of cases; 0.3% reach 0.9, all
  phrases every call says ("Do you have a budget?", "Thanks for your time"). Between 0.85 and 0.9 lie the
  dangerous ones: "Am I speaking with Katherine?" against "Am I speaking with Kalim" is 0.85, a name changed in
  a stock phrase;
- quotes copied with one slip (a word left out, or one inflected) from the call's own transcript: 94.6% score
  0.9 or more (98.4% at 0.85; 99.8% at 0.8).
0.85 would keep 4 points more of the sloppy quotes and let a changed name through; 0.9 does not. A quote longer
than `MAX_QUOTE_CHARS` is refused unread: a quote is a few words, and the fuzzy search is linear in the
transcript for each one. What this cannot catch: a real quote beside a value that misstates it (quote "about
nine thousand pounds", value "$90,000"), since values are rightly written otherwise than said ("£9,000");
`value_score` in the evidence (the value looked up in its own passage, 1.0 when word for word) shows a reviewer
where to look.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass

from .words import words

__all__ = ["FUZZY_THRESHOLD", "MAX_QUOTE_CHARS", "MAX_WINDOWS", "QuoteMatch", "Searcher", "find_quote"]

FUZZY_THRESHOLD = 0.9
MAX_QUOTE_CHARS = 400
MAX_WINDOWS = 200  # a quote of common words ("and the the") anchors everywhere: the likeliest places only


@dataclass(frozen=True, slots=True)
class QuoteMatch:
    score: float  # 1.0: the quote's words appear as they are; below: the best fuzzy window
    start: int  # characters [start, end) of the transcript's text
    end: int


def find_quote(quote: str, text: str) -> QuoteMatch | None:
    """Where `quote` best matches `text` (normalised), with how well; None when the quote has no words."""
    return Searcher(text).find(quote)


class Searcher:
    """One transcript, normalised once, searched for each field's quote."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words, self.spans = words(text)
        self.where: dict[str, list[int]] = {}  # word -> its positions, for the fuzzy search's anchors
        for at, word in enumerate(self.words):
            self.where.setdefault(word, []).append(at)
        self.padded = " " + " ".join(self.words) + " "
        starts, at = [], 1
        for word in self.words:
            starts.append(at)
            at += len(word) + 1
        self.starts = starts

    def find(self, quote: str) -> QuoteMatch | None:
        said = words(quote)[0]
        if not said:
            return None
        needle = " ".join(said)
        at = self.padded.find(" " + needle + " ")
        if at >= 0:  # the quote's words as they are: a run of whole words of the transcript
            first = self.starts.index(at + 1)
            return self._match(1.0, first, first + len(said))
        return self._fuzzy(said, needle)

    def _fuzzy(self, words: list[str], needle: str) -> QuoteMatch:
        """The most similar window of about the quote's length among those holding half its words in place."""
        n = len(words)
        votes: Counter[int] = Counter()  # window start -> quote words found where that start puts them
        for j, word in enumerate(words):
            for at in self.where.get(word, ()):
                votes[at - j] += 1
        need = max(1, (n + 1) // 2)
        # A word left out or added shifts the rest by one: count the neighbours' votes too.
        held = {s: votes[s - 1] + votes[s] + votes[s + 1] for s in votes}
        likely = sorted((s for s in held if held[s] >= need), key=lambda s: -held[s])[:MAX_WINDOWS]
        starts = {s + d for s in likely for d in (-1, 0, 1)}
        best = (0.0, 0, 0)
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(needle)  # the quote is compared with each window: difflib caches the second sequence
        for first in sorted(start for start in starts if 0 <= start < len(self.words)):
            for size in (n - 1, n, n + 1):
                if size < 1:
                    continue
                matcher.set_seq1(" ".join(self.words[first : first + size]))
                if matcher.real_quick_ratio() <= best[0] or matcher.quick_ratio() <= best[0]:
                    continue  # upper bounds: this window cannot beat the best one
                score = matcher.ratio()
                if score > best[0]:
                    best = (score, first, min(first + size, len(self.words)))
        return self._match(*best)

    def _match(self, score: float, first: int, last: int) -> QuoteMatch:
        if not self.spans or last <= first:
            return QuoteMatch(score, 0, 0)
        return QuoteMatch(score, self.spans[first][0], self.spans[last - 1][1])
