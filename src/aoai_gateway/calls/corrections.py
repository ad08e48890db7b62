"""Names the call corrects, and names said in full: "we're in Leeds, not Manchester", "It's Katarzyna. Not Katherine."

    corrected("Ah, no, actually we're in Leeds, not Manchester.", "Manchester")    # "Leeds"
    completed("It's Katarzyna Wiśniewska. Everyone gets it wrong.", "Katarzyna")     # "Katarzyna Wiśniewska"
    readdressed("Am I speaking with Katherine? It's Katarzyna Wiśniewska.", "Katherine")  # "Katarzyna Wiśniewska"
    apply_corrections(fields, evidence, schema_properties, text)   # called by grounding.ground

A property marked `"x-corrections": true` (the bundled `customer_name`, `company`, `location`) whose value the call
itself takes back ("<X>, not <value>", "<X>. Not <value>") becomes the name said in its place, the nearest one
before the "not", and is dropped where the call takes it back with no name before the "not" ("we believe, not
Manchester", as speech recognition heard "we're in Leeds now, not Manchester"); a property marked `"x-full-name":
true` (the bundled `customer_name` and `agent_name`) given as one word becomes the fullest form the call says of it
(that word followed by more capitalised words, no sentence break between), or (not the agent's) the full name given
in answer where the call asks for someone by that word ("Am I speaking with Katherine? My Katarzyna Wiśniewska,
everyone gets it wrong", as speech recognition heard "It's Katarzyna, actually"; not a name the caller introduces as
theirs, "It's Tomasz Wrobel from Skyward Sprayers"). Both are written in the evidence with the passage that says so.
A value is only ever replaced by words of the transcript.
"""

from __future__ import annotations

import re
from typing import Any

from .roles import drop, was
from .words import CAPITALISED, sentences, words

_NAME = re.compile(rf"{CAPITALISED}(?:\s+{CAPITALISED})*")
_CUE_WORDS = frozenset(
    {"its", "it", "i", "im", "we", "were", "no", "ah", "oh", "actually", "not", "yes", "sorry", "so", "and", "but"}
)
_FILLER = frozenset({"actually", "sorry", "please", "though", "then", "really"})  # "X, actually. Not V"
_LOOK_BACK = 80  # characters before "not <value>" searched for the name said instead
_MAX_NAME_WORDS = 4


def _name(value: str) -> str:
    """The whole name as a pattern: its words, then no other capitalised word nor a hyphen (it would be part of a
    longer name: "not Yuma Ramírez" takes back a person, not the city "Yuma")."""
    return r"\s+".join(re.escape(word) for word in value.split()) + rf"\b(?!-\w)(?![ \t]+(?-i:{CAPITALISED}))"


def _taken_back(value: str) -> re.Pattern[str] | None:
    return re.compile(rf"\bnot\s+{_name(value)}", re.IGNORECASE) if value.split() else None


def taken_back(text: str, value: str) -> str | None:
    """The passage where the call last says "not <value>", or None; None too where the call says the name again
    after that: its last word on the name stands ("Is that Bronwyn Tuckwell?", as speech recognition heard "T.K.
    is not Bronwyn Tuckwell", then "Yeah, Bronwyn Tuckwell")."""
    pattern = _taken_back(value)
    last = None if pattern is None else max(pattern.finditer(text), key=lambda found: found.start(), default=None)
    if last is None or re.compile(rf"(?<![\w-]){_name(value)}", re.IGNORECASE).search(text, last.end()):
        return None
    return last[0]


def corrected(text: str, value: str) -> tuple[str, str] | None:
    """(the name said in `value`'s place, the passage) where the call says "<X>, not <value>"; else None."""
    pattern = _taken_back(value)
    if pattern is None:
        return None
    for found in pattern.finditer(text):
        before = text[max(0, found.start() - _LOOK_BACK) : found.start()]
        # Only "X, not V", "X. Not V", "X, actually. Not V": punctuation and filler between the name and "not".
        names = [n for n in _NAME.finditer(before) if set(words(before[n.end() :])[0]) <= _FILLER]
        if not names:
            continue
        parts = list(re.finditer(r"\S+", names[-1][0]))
        first = 0
        while first < len(parts) and _cue(parts[first][0]):
            first += 1
        if first == len(parts) or len(parts) - first > _MAX_NAME_WORDS:
            continue  # only cue words, or a run of capitalised words too long to be a name
        name = " ".join(part[0] for part in parts[first:])
        if words(name)[0] == words(value)[0]:
            continue
        start = found.start() - len(before) + names[-1].start() + parts[first].start()
        return name, text[start : found.end()]
    return None


# The agent asking for someone by a name: "Am I speaking with Katherine?", "Is that Katherine?".
_ASKED = re.compile(
    r"\b(?:speaking (?:with|to)|speak (?:with|to)|is that|is this|looking for)\s+(" + CAPITALISED + r")\s*\?",
    re.IGNORECASE,
)
_FROM = re.compile(r"[\s,]*(?:(?:calling|ringing|here)\s+)?(?:from|with|at)\b", re.IGNORECASE)
_NAME_CUES = frozenset({"my", "name", "is", "its", "it", "im", "i", "this", "no", "yes", "actually", "sorry", "oh"})


def readdressed(text: str, value: str) -> tuple[str, str] | None:
    """(the full name, the passage) where the call asks for someone by the one-word `value` and the next sentence
    answers with a full name that does not hold it ("Am I speaking with Katherine? My Katarzyna Wiśniewska,
    everyone gets it wrong"); else None."""
    if len(value.split()) != 1:
        return None
    spans = sentences(text)
    for at, (start, end) in enumerate(spans[:-1]):
        asked = _ASKED.search(text, start, end)
        if asked is None or words(asked[1])[0] != words(value)[0]:
            continue
        reply_start, reply_end = spans[at + 1]
        reply = text[reply_start:reply_end]
        first, parts = None, []
        for first in _NAME.finditer(reply):  # the first run of capitalised words that is more than cues ("Oh")
            parts = first[0].split()
            while parts and words(parts[0])[0] and words(parts[0])[0][0] in _NAME_CUES:
                parts = parts[1:]
            if parts:
                break
        if first is None or not parts:
            continue
        said = words(" ".join(parts))[0]
        if not 2 <= len(said) <= _MAX_NAME_WORDS or words(value)[0][0] in said:
            continue
        if reply[: first.start()].strip(" ,.") and not set(words(reply[: first.start()])[0]) <= _NAME_CUES:
            continue  # the reply opens with something else than the name: no answer to the question
        if _FROM.match(reply, first.end()):
            continue  # "It's Tomasz Wrobel from Skyward Sprayers": the caller introducing themselves
        return " ".join(parts), text[asked.start(1) : reply_start + first.end()]
    return None


def completed(text: str, value: str) -> tuple[str, str] | None:
    """(`value` with the capitalised words the call says right after it, the passage), the longest said; else
    None. Only for a one-word value."""
    if len(value.split()) != 1:
        return None
    pattern = re.compile(rf"\b{re.escape(value)}((?:[ \t]+{CAPITALISED}){{1,{_MAX_NAME_WORDS - 1}}})(?![\w'])")
    best: re.Match[str] | None = None
    for found in pattern.finditer(text):
        if best is None or len(found[0]) > len(best[0]):
            best = found
    if best is None:
        return None
    more = best[1].split()
    if any(_cue(word) for word in more):
        return None  # "Katarzyna It's ..." is no surname
    return f"{value} {' '.join(more)}", best[0]


def apply_corrections(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str) -> int:
    """Correct and complete the marked fields in place; the number of values dropped as taken back."""
    dropped = 0
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        value = fields.get(name)
        if not isinstance(value, str):
            continue
        if prop.get("x-corrections") is True and (found := corrected(text, value)) is not None:
            value, passage = found
            fields[name] = value
            evidence[name] = _note(evidence.get(name), value, passage, f"the call corrects {_was(evidence, name)}")
        elif prop.get("x-corrections") is True and (said := taken_back(text, value)) is not None:
            # "we believe, not Manchester": taken back, and no name heard in its place
            drop(fields, evidence, name, f"the call takes it back ({said!r}) and no name said in its place was heard")
            dropped += 1
            continue
        asked_for = prop.get("x-full-name") is True and "x-introduced-from" not in prop  # the customer, not the agent
        if asked_for and (named := readdressed(text, value)) is not None:
            value, passage = named
            fields[name] = value
            evidence[name] = _note(evidence.get(name), value, passage, "the name given in answer to the one asked for")
        if prop.get("x-full-name") is True and (full := completed(text, value)) is not None:
            value, passage = full
            fields[name] = value
            evidence[name] = _note(evidence.get(name), value, passage, "the name as the call says it in full")
    return dropped


def _cue(word: str) -> bool:
    folded = words(word)[0]
    return not folded or folded[0] in _CUE_WORDS


def _was(evidence: dict[str, Any], name: str) -> str:
    note = evidence.get(name)
    return repr(note.get("value")) if isinstance(note, dict) else "the model's value"


def _note(before: Any, value: str, passage: str, reason: str) -> dict[str, Any]:
    note = dict(before) if isinstance(before, dict) else {}
    note.update(value=value, quote=passage, found=True, score=1.0, reason=reason, was=was(before))
    return note
