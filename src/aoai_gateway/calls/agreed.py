"""What an assent agrees to: a next step given as "Will do" is the proposal it answers.

    acknowledges("Will do. Thanks for your time.")    # True: assent and courtesy, no action
    proposal_before(text, start)                      # (start, end) of "I'll send a proposal this week, ...", or None
    proposal_value(text[start:end])                   # "I'll send a proposal this week, and we'll arrange ..."

A small model asked for the follow-up both sides agreed often quotes the call's last words, the assent ("Will do",
"Sounds good. Thank you, Rebecca."), which names no action. What was agreed is the proposal that assent answers: the
nearest sentence before it, among the `LOOK_BACK` before it, where someone commits to an action ("I'll send ...",
"we'll arrange ...", "let's talk again ...", "I suggest a live demo ...", "the next step is ..."); and where
sentences of commitment or assent run on before that one (the agent's offer, the buyer's "Fine.", the buyer's "we'll
talk on Monday"), the first of the run (the offer's own question passed over once: "How does next Wednesday look?"):
the offer, not the reply that repeats it. Used by grounding for a property marked `"x-agreed": true` (the bundled
`next_steps`).
"""

from __future__ import annotations

import re

from .words import sentences, words

__all__ = ["LOOK_BACK", "acknowledges", "proposal_before", "proposal_value"]

LOOK_BACK = 4  # sentences before the assent searched for the proposal: the exchange it closes, not the whole call

# Words of assent, thanks and courtesy, folded: a passage of these alone (and the names it addresses) says yes to
# something, it names nothing to do.
_ASSENT = frozenset(
    {"will", "do", "sounds", "sound", "good", "great", "thanks", "thank", "you", "your", "for", "time", "okay", "ok"}
    | {"fine", "perfect", "lovely", "brilliant", "yes", "yeah", "sure", "right", "alright", "cheers", "bye", "so"}
    | {"goodbye", "see", "soon", "speak", "talk", "then", "much", "very", "that", "it", "all", "the", "and", "a"}
    | {"best", "excellent", "wonderful", "absolutely", "of", "course", "deal", "again", "too", "oh", "well"}
)
# Someone taking on an action: "I'll", "we will", "let's", "let me", "I'd suggest", "I suggest", "the next step".
_COMMITS = re.compile(
    r"\b(?:(?:i|we)(?:['\u2019]ll|\s+will)|let['\u2019]s|let\s+me|(?:i|we)(?:['\u2019]d|\s+would)?\s+suggest"
    r"|next\s+step)\b",
    re.IGNORECASE,
)
_OPENING_ASSENT = re.compile(
    r"^(?:(?:great|okay|ok|perfect|right|fine|sure|lovely|brilliant|good|excellent|understood)\b[,.!]?\s*)+",
    re.IGNORECASE,
)
_NAME_WORD = re.compile(r"[A-Z\u00c0-\u024f]")


def acknowledges(text: str) -> bool:
    """Whether `text` is assent and courtesy alone ("Will do.", "Sounds good. Thank you, Rebecca."): each word one
    of assent, or a capitalised word inside a sentence (the name of the one thanked)."""
    said = False
    for start, end in sentences(text):
        sentence = text[start:end]
        folded, spans = words(sentence)
        for at, (word, (first, _)) in enumerate(zip(folded, spans, strict=True)):
            if word in _ASSENT or (at > 0 and _NAME_WORD.match(sentence[first])):
                said = True
                continue
            return False
    return said


def commits(text: str) -> bool:
    """Whether someone takes on an action in `text` ("I'll send ...", "let's talk again ...")."""
    return _COMMITS.search(text) is not None


def proposal_before(text: str, start: int) -> tuple[int, int] | None:
    """Where the proposal lies that an assent beginning at `start` in `text` answers, or None when none of the
    `LOOK_BACK` sentences before it commits to anything."""
    before = [span for span in sentences(text) if span[1] <= start]
    searched = range(len(before) - 1, max(len(before) - 1 - LOOK_BACK, -1), -1)  # nearest first
    nearest = next((at for at in searched if commits(text[slice(*before[at])])), None)
    if nearest is None:
        return None
    first, asked = nearest, False
    for at in range(nearest - 1, -1, -1):  # back over the exchange: commitments and assents, to the offer
        sentence = text[slice(*before[at])]
        if commits(sentence):
            first = at
        elif sentence.rstrip().endswith("?") and not asked:
            asked = True  # the offer's own question, once: "I suggest a demo. How does Wednesday look?"
        elif not acknowledges(sentence):
            break
    return before[first]


def proposal_value(passage: str) -> str:
    """The proposal as a value: its sentence without the assent that opens it ("Great, ") or its final stop."""
    return _OPENING_ASSENT.sub("", passage.strip()).rstrip(".!?").strip() or passage.strip()
