"""Fields grounded in the transcript: every value comes with the quote it rests on, or it is not kept.

    wrapped = grounded_schema(schema.schema)        # what the model is asked for: {"field": {"value", "quote"}}
    result = ground(answer, schema, transcript)     # Grounded(fields, evidence, dropped)
    result.fields["customer_name"]                  # "Callum Fairbairn", or None when its quote is not there
    result.evidence["customer_name"]                # {"value", "quote", "found", "score", "start", "end", ...}

The model answers each field as `{"value": ..., "quote": "a few words copied from the transcript"}` (a list
field: one such object per item). The quote is looked up in the transcript word for word, else the most alike
window of its words must be at least `FUZZY_THRESHOLD` similar (quotes.py).

A value whose quote is not found, or that has no quote, is dropped to null (a list item is dropped) and the evidence
records what it was and why; a value its quote holds, said word for word in the transcript, is its own quote (the
model mangled the quote around it: "Oluwaseun Adeyemi Adeyemi"), and so is a value made of phrases of two words or
more each said word for word, beside a quote that paraphrases it ("free roof survey, surveyor's name, confirmation
email"), and so is the one sentence of the call that states the value's amount, beside a quote pieced together that
states it too ("18,000 pounds a year for 35 seats"). A list keeps an item said twice once, and drops one whose words
are a run of another's ("forklifts" beside "electric forklifts"); a list marked `"x-no-amounts": true` (the bundled
`products_of_interest`) drops an item that is a count or a price ("400 cubic meters per hour", "48,000 dollars"). A
field that cannot be null in the schema (the bundled `sentiment`) keeps its value, its evidence marked unsupported.
A property marked `"x-grounded": false` in the schema (the bundled `summary`, which is the model's own words) is
asked for and kept as it is. A property marked `"x-differs-from": "other"` is dropped when it names what `other` names
(the bundled `customer_name` and `agent_name`: a small model takes the agent, who introduces themselves first, for the
customer; a customer so dropped, or not given, is the other person the call names, roles.name_the_customer; an
`x-organisation` company so dropped is the organisation the call says the buyer is at, organisations.py; a place that
must differ from the seller is not where the caller calls from, and is where the buyer's organisation is said to be,
places.py); a list so marked (the bundled `products_of_interest`) drops an item that is the other's name or its first
words ("Lingua" beside the seller "Lingua Bridge"). A value's numbers must be among its passage's, said in digits or
words (numbers.py): a budget beside a quote that states no amount rests on the one sentence of the call that states it,
where exactly one does, and is dropped otherwise; dropped too is a value of a property marked `"x-amount": true` (the
bundled `budget`) that states none ("Not yet, I can't give you a number"), and of one marked `"x-time": true` (the
bundled `timeline`) that names no time ("understood"). An `x-amount` value on a sentence that says nothing of spending
(a price said back) is the amount of the one that states one to spend (values.py). A value of a property marked
`"x-proper-noun": true` (the bundled `location`) rests on the sentence that says it where its quote does not ("Oban"
quoted as "The Driftwood Café"); one no passage says capitalised names no place ("the facility next to the harbour",
"Brightfield LED's facility" beside "the facility next to the expo"): dropped, and so is one of a property marked
`"x-full-name": true` that says a word twice ("K-Kgomotso K-Kgomotso", speech recognition looping). A property marked
`"x-null-when": {"other": value}` is null when the other fields hold those values (the bundled `next_steps` and
`timeline` when the sentiment is negative: a buyer who declines has neither). A value of a property marked `"x-agreed":
true` (the bundled `next_steps`) that is assent alone, or rests on assent alone ("Will do. Thanks for your time."), is
the proposal that assent answers (agreed.py), or dropped where none is before it. A property marked `"x-declined":
value` (the bundled `sentiment`: "negative") is that value where the buyer asks not to be called again ("take my number
off your list") or refuses outright ("it's not worth it for us", declines.py). A value written with another currency
symbol than the one its passage names ("£200" beside "two hundred dollars") is kept with the passage's; a value that is
a word for nothing ("null", "n/a", "not mentioned") is null."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .agreed import acknowledges, commits, proposal_before, proposal_value
from .corrections import apply_corrections
from .declines import declined
from .numbers import amounts
from .organisations import move_organisations, name_the_organisation, unname_people
from .places import place_the_buyer
from .quotes import FUZZY_THRESHOLD, MAX_QUOTE_CHARS, QuoteMatch, Searcher
from .roles import name_the_customer, settle_roles, unname_organisations, was
from .schema import ExtractionSchema, differs_from
from .transcript import Transcript
from .values import (
    count_or_price,
    currency,
    listed,
    parts,
    proper_noun,
    repeats_a_word,
    spending,
    states_amount,
    states_time,
    to_spend,
)
from .words import run_of, same_name, sentences, words

__all__ = [
    "Grounded",
    "field_kind",
    "ground",
    "grounded_schema",
    "without_annotations",
]

_QUOTE_SCHEMA = {
    "type": ["string", "null"],
    "description": "A short verbatim quote from the transcript (a few words, copied exactly as written there) "
    "that states the value; null when the value is null.",
}


@dataclass
class Grounded:
    fields: dict[str, Any]
    evidence: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0  # values dropped for want of a quote


# -- the schema the model answers


def grounded_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each property asked as {"value", "quote"} (list items each so), `x-` annotations removed."""
    properties = {}
    for name, prop in schema["properties"].items():
        kind = field_kind(prop)
        plain = without_annotations(prop)
        if kind == "plain":
            properties[name] = plain
        elif kind == "list":
            item = plain.get("items", {})
            properties[name] = {
                **plain,
                "items": _pair(item, item.get("description") if isinstance(item, dict) else None),
            }
        else:
            properties[name] = _pair(plain, plain.get("description"))
    return {**without_annotations(schema), "properties": properties}


def _pair(value: Any, description: Any) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["quote", "value"],
        # The quote first: the model copies the passage, then writes the value it reads there.
        "properties": {"quote": _QUOTE_SCHEMA, "value": value},
    }
    if isinstance(description, str):
        pair["description"] = description
    return pair


def field_kind(prop: Any) -> str:
    """ "plain" (not grounded), "list" (each item grounded) or "value" (the field grounded)."""
    if not isinstance(prop, dict) or prop.get("x-grounded") is False:
        return "plain"
    items = prop.get("items")
    if _types(prop) == {"array"} and isinstance(items, dict) and _types(items) - {"null"} <= _SCALARS:
        return "list"
    return "value"


_SCALARS = {"string", "number", "integer", "boolean"}


def _types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    if "enum" in prop:
        return {"null" if v is None else "string" for v in prop["enum"]}
    return {"string"}


def _nullable(prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    branches = prop.get("anyOf") or prop.get("oneOf") or []
    return (
        "null" in _types(prop)
        or None in prop.get("enum", [0])
        or any(isinstance(b, dict) and b.get("type") == "null" for b in branches)
    )


def without_annotations(node: Any) -> Any:
    """The schema less our own `x-...` keywords, which OpenAI's strict mode would refuse."""
    if isinstance(node, dict):
        return {k: without_annotations(v) for k, v in node.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(node, list):
        return [without_annotations(v) for v in node]
    return node


# -- checking the answer


def ground(answer: dict[str, Any], schema: ExtractionSchema, transcript: Transcript) -> Grounded:
    """The fields of a grounded `answer` (valid against `grounded_schema`), each kept only with its quote found."""
    searcher = Searcher(transcript.text)
    result = Grounded(fields={})
    for name, prop in schema.schema["properties"].items():
        if name not in answer:
            continue
        kind = field_kind(prop)
        given = answer[name]
        if kind == "plain":
            result.fields[name] = given
        elif kind == "list":
            kept: list[Any] = []
            notes: list[dict[str, Any]] = []
            kept_notes: list[dict[str, Any]] = []
            seen: set[tuple[str, ...]] = set()  # the kept items' words, as `listed` compares them
            for pair in given if isinstance(given, list) else []:
                if isinstance(pair, dict) and _nullish(pair.get("value")):
                    continue
                note = _check(pair, searcher, transcript)
                notes.append(note)
                item = note.get("kept", note["value"])
                if (
                    note["found"]
                    and prop.get("x-no-amounts") is True
                    and isinstance(item, str)
                    and count_or_price(item)
                ):
                    note.update(found=False, reason="an amount or a count, not the name of a thing")
                if note["found"] and listed(item, kept, seen):  # the same item twice: once is what it means
                    note.update(found=False, reason="dropped: listed already")
                    result.dropped += 1
                elif note["found"]:
                    kept.append(item)
                    kept_notes.append(note)
                else:
                    note["reason"] = f"dropped: {note['reason']}"
                    result.dropped += 1
            for index, whole in reversed(parts(kept)):  # "forklifts" beside "electric forklifts": said already
                kept_notes[index].update(found=False, reason=f"dropped: part of {whole!r}, listed already")
                del kept[index]
                result.dropped += 1
            result.fields[name] = kept
            if notes:
                result.evidence[name] = notes
        else:
            if not isinstance(given, dict) or _nullish(given.get("value")):
                result.fields[name] = None
                continue
            note = _check(given, searcher, transcript)
            result.evidence[name] = note
            if note["found"] and prop.get("x-amount") is True and not states_amount(str(given["value"])):
                note.update(found=False, reason="the value states no amount")  # "Not yet, no number until..."
            if note["found"] and prop.get("x-amount") is True:
                _to_spend(note, searcher, transcript)  # a price said back ("48,000 dollars for one drone?")
            if note["found"] and prop.get("x-time") is True and not states_time(str(given["value"])):
                note.update(found=False, reason="the value states no time")  # "understood", "not every day"
            if note["found"] and prop.get("x-proper-noun") is True:
                _names_it(note, str(given["value"]), searcher, transcript)  # "Oban" quoted as "The Driftwood Café"
            if note["found"] and prop.get("x-full-name") is True and repeats_a_word(str(given["value"])):
                note.update(found=False, reason="it says a word twice: speech recognition repeating itself, no name")
            if prop.get("x-agreed") is True and (note["found"] or "passage" in note):
                _agreed(note, searcher, transcript)  # "Will do": the proposal it answers
            if note["found"]:
                result.fields[name] = note.get("kept", given["value"])
            elif _nullable(prop):
                result.fields[name] = None
                note["reason"] = f"dropped: {note['reason']}"
                result.dropped += 1
            else:
                result.fields[name] = given["value"]
                note["reason"] = f"kept unsupported (the schema does not allow null): {note['reason']}"
    result.dropped += apply_corrections(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    result.dropped += settle_roles(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    _apart(result, schema)
    result.dropped += unname_organisations(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    result.dropped += unname_people(result.fields, result.evidence, schema.schema["properties"])
    result.dropped += move_organisations(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    _declined(result, schema, transcript)
    _null_when(result, schema)
    name_the_customer(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    name_the_organisation(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    result.dropped += place_the_buyer(result.fields, result.evidence, schema.schema["properties"], transcript.text)
    for note in result.evidence.values():  # the passages the call's own words settled (roles, corrections): where
        if isinstance(note, dict) and note.get("found") and "segments" not in note:
            _place(note, searcher, transcript)
    return result


def _agreed(note: dict[str, Any], searcher: Searcher, transcript: Transcript) -> None:
    """A value of assent alone, or resting on assent alone ("Will do. Thanks for your time."), is the proposal that
    assent answers (agreed.py), or dropped where the exchange before it commits to nothing; one resting on a reply
    that takes up the offer of the exchange it closes (only assent, commitments and the offer's own question
    between) is that offer."""
    value, passage = note["value"], note["passage"]
    match = searcher.find(passage)
    assent = isinstance(value, str) and (acknowledges(value) or acknowledges(passage))
    # Not an assent: a reply that takes up an offer said just before it ("Send it to my email and we'll talk on
    # Monday" after "I'll send you our pricing ..., and then let's talk again next Monday") is that offer.
    if not assent and (match is None or not commits(passage)):
        return
    where = proposal_before(transcript.text, match.start) if match is not None else None
    if not assent and (where is None or match is None or not _same_exchange(transcript.text, where, match.start)):
        return
    if where is None:
        note.update(found=False, reason="the value is an assent, and no proposal before it commits to anything")
        return
    proposal = transcript.text[where[0] : where[1]]
    _rests_on(
        note,
        transcript,
        *where,
        found=True,
        kept=proposal_value(proposal),
        value_score=1.0,
        reason="the quote is an assent; the proposal it answers is the value"
        if assent
        else "the quote takes up the offer said just before it; the offer is the value",
    )


def _same_exchange(text: str, where: tuple[int, int], start: int) -> bool:
    """Whether only the exchange the sentence at `where` opens lies between it and `start`: assent, commitments
    taking it up, and at most one question (the offer's own: "How does next Wednesday look?")."""
    between = text[where[1] : start]
    said = [between[first:last] for first, last in sentences(between)]
    questions = [sentence for sentence in said if sentence.rstrip().endswith("?")]
    return len(questions) <= 1 and all(
        sentence in questions or acknowledges(sentence) or commits(sentence) for sentence in said
    )


def _declined(result: Grounded, schema: ExtractionSchema, transcript: Transcript) -> None:
    """Set a property marked `"x-declined": value` (the bundled `sentiment`: "negative") to that value where the
    buyer asks not to be called again (declines.py), keeping the model's answer in the evidence (`was`)."""
    properties = schema.schema["properties"]
    marked = [
        (name, prop["x-declined"])
        for name, prop in properties.items()
        if isinstance(prop, dict) and isinstance(prop.get("x-declined"), str) and _allows(prop, prop["x-declined"])
    ]  # a value the schema would refuse is never written
    request = declined(transcript.text) if marked else None
    if request is None:
        return
    for name, wanted in marked:
        if result.fields.get(name) == wanted:
            continue
        before = result.evidence.get(name)
        result.fields[name] = wanted
        result.evidence[name] = {
            "value": wanted,
            "quote": transcript.text[request.start : request.end],
            "found": True,
            "score": 1.0,
            "reason": request.reason,
            "was": was(before),
        }


def _allows(prop: dict[str, Any], value: str) -> bool:
    """Whether `prop` takes the string `value`: its enum holds it, or it is a string without an enum."""
    enum = prop.get("enum")
    return value in enum if isinstance(enum, list) else bool(value) and "string" in _types(prop)


def _null_when(result: Grounded, schema: ExtractionSchema) -> None:
    """Null a value where its `x-null-when` holds: `{"sentiment": "negative"}` on the bundled `next_steps` and
    `timeline` (a buyer who declines has no next step, and wants nothing by any date)."""
    for name, prop in schema.schema["properties"].items():
        when = prop.get("x-null-when") if isinstance(prop, dict) else None
        value = result.fields.get(name)
        if not (isinstance(when, dict) and when and value is not None and _nullable(prop)):
            continue
        properties = schema.schema["properties"]
        if all(other in properties and result.fields.get(other) == wanted for other, wanted in when.items()):
            said = ", ".join(f"{other} is {wanted!r}" for other, wanted in when.items())
            result.fields[name] = None
            result.dropped += 1
            note = result.evidence.setdefault(name, {"value": value})
            note.update(found=False, reason=f"dropped: null when {said}")


def _place(note: dict[str, Any], searcher: Searcher, transcript: Transcript) -> None:
    """Add where a settled value's passage lies (its segments and their times), as `_check` does for a quote."""
    quote = note.get("quote")
    match = searcher.find(quote) if isinstance(quote, str) and len(quote) <= MAX_QUOTE_CHARS else None
    if match is None or match.score < 1.0:
        return
    _rests_on(note, transcript, match.start, match.end)


def _rests_on(note: dict[str, Any], transcript: Transcript, start: int, end: int, **more: Any) -> None:
    """Make characters [start, end) of the transcript `note`'s passage, with its segments and their times."""
    first, last = transcript.segments_between(start, end)
    note.update(
        passage=transcript.text[start:end],
        start=transcript.segments[first].start,
        end=transcript.segments[last].end,
        segments=[first, last],
        **more,
    )


def _apart(result: Grounded, schema: ExtractionSchema) -> None:
    """Drop a value that names what a field of its `x-differs-from` (a name, or a list of names) names: the
    customer the model took for the agent, a company that is the customer's name or the city.

    The same words, or all of one's words among the other's ("Priya" and "Priya Raman"), count as the same. A list's
    item is dropped when it is the other's name or its first words ("Lingua" for the seller "Lingua Bridge"; not
    "pumps" beside "Vantor Pumps")."""
    for name, prop in schema.schema["properties"].items():
        others = differs_from(prop)
        for other in others:
            value, theirs = result.fields.get(name), result.fields.get(other)
            if isinstance(value, list) and isinstance(theirs, str):
                _apart_items(result, name, other, theirs)
            if not (isinstance(value, str) and isinstance(theirs, str) and _nullable(prop)):
                continue
            if same_name(value, theirs):
                result.fields[name] = None
                result.dropped += 1
                note = result.evidence.setdefault(name, {"value": value, "found": False})
                note["reason"] = f"dropped: the same as {other} ({theirs!r}), which it must differ from"


def _apart_items(result: Grounded, name: str, other: str, theirs: str) -> None:
    """Drop each item of the list `name` that is `theirs` (the value of `other`) or its first words."""
    named = words(theirs)[0]
    notes = result.evidence.get(name)
    kept = []
    for item in result.fields[name]:
        said = words(item)[0] if isinstance(item, str) else []
        if not said or said != named[: len(said)]:
            kept.append(item)
            continue
        result.dropped += 1
        for note in notes if isinstance(notes, list) else []:
            if note.get("found") and note.get("kept", note.get("value")) == item:
                note.update(found=False, reason=f"dropped: the name of {other} ({theirs!r}), not one of {name}")
    result.fields[name] = kept


def _check(pair: Any, searcher: Searcher, transcript: Transcript) -> dict[str, Any]:
    value = pair.get("value") if isinstance(pair, dict) else pair
    quote = pair.get("quote") if isinstance(pair, dict) else None
    note: dict[str, Any] = {"value": value, "quote": quote, "found": False, "score": 0.0}
    if not isinstance(quote, str) or not quote.strip():
        note["reason"] = "no quote given"
        return note
    if len(quote) > MAX_QUOTE_CHARS:
        note["quote"] = quote[:MAX_QUOTE_CHARS] + "..."
        note["reason"] = f"the quote is {len(quote)} characters, over {MAX_QUOTE_CHARS}: not a short quote"
        return note
    match = searcher.find(quote)
    if (match is None or match.score < FUZZY_THRESHOLD) and isinstance(value, str) and _within(value, quote):
        # A quote mangled around its value ("Oluwaseun Adeyemi Adeyemi") where the call says the value word for
        # word: the value is its own quote. Only word for word, never fuzzily: a value close to the call's words
        # is not in it; and only a value the quote holds: a quote about something else supports nothing.
        itself = searcher.find(value)
        if itself is not None and itself.score == 1.0:
            note["reason"] = "the quote is not in the transcript; the value it holds is, word for word"
            note["quote_found"] = False
            match = itself
    if (match is None or match.score < FUZZY_THRESHOLD) and isinstance(value, str) and _near(quote, value):
        # A value made of the call's own phrases ("free roof survey, surveyor's name, confirmation email") beside a
        # paraphrased quote: each phrase, of two words or more, said word for word, rests on the call's words.
        parts = [part for part in _PARTS.split(value) if part.strip()]
        found = [searcher.find(part) for part in parts]
        whole = len(parts) >= 2 and all(len(words(part)[0]) >= 2 for part in parts)
        if whole and all(place is not None and place.score == 1.0 for place in found):
            note["reason"] = "the quote is not in the transcript; each phrase of the value is, word for word"
            note["quote_found"] = False
            match = found[0]
    stated = amounts(value) if isinstance(value, str) else set()
    pieced = (match is None or match.score < FUZZY_THRESHOLD) and stated and stated <= amounts(quote)
    if pieced and len(stating := _stating(transcript.text, stated)) == 1:
        # A quote pieced together ("18,000 pounds a year for 35 seats") that states the value's amount: the one
        # sentence of the call that states it is its passage.
        note["reason"] = "the quote is not in the transcript; the one sentence that states its amount is"
        note["quote_found"] = False
        match = QuoteMatch(1.0, *stating[0])
    if match is None:
        note["reason"] = "the quote has no words"
        return note
    note["score"] = round(match.score, 3)
    if match.score < FUZZY_THRESHOLD:
        closest = f"closest passage {match.score:.2f} similar" if match.score else "no passage holds half its words"
        note["reason"] = f"the quote is not in the transcript ({closest})"
        return note
    passage = transcript.text[match.start : match.end]
    if stated and not stated <= amounts(passage):  # "$1,500,000" quoted from "cut their costs by half"
        # The model quoted the wrong sentence for an amount the call does state: the one sentence that states it
        # is the passage ("about 9,000 pounds" for "£9,000" quoted beside "we've got two kids").
        stating = _stating(transcript.text, stated)
        if len(stating) != 1:
            said = ", ".join(f"{n:,.0f}" if n.is_integer() else f"{n:,}" for n in sorted(stated - amounts(passage)))
            note["reason"] = f"the value's numbers ({said}) are not in its quote"
            note["passage"] = passage
            return note
        (start, end), note["quote_found"] = stating[0], False
        match = QuoteMatch(1.0, start, end)
        passage = transcript.text[start:end]
        note["reason"] = "the quote does not state the amount; the one sentence of the call that does is its passage"
    _rests_on(note, transcript, match.start, match.end, found=True)
    in_words = currency(value, passage) if isinstance(value, str) else value
    if in_words != value:  # "£200" beside "two hundred dollars": the call's currency, not the model's
        note["kept"] = in_words
        note["reason"] = "currency written as the quote names it"
    if isinstance(value, str):  # how far the value itself is in its passage: 1.0 word for word, for a reviewer
        in_passage = Searcher(passage).find(value)
        note["value_score"] = round(in_passage.score, 3) if in_passage else 0.0
    return note


def _names_it(note: dict[str, Any], value: str, searcher: Searcher, transcript: Transcript) -> None:
    """A place or an organisation rests where the call says it: a passage that does not say a word of it capitalised
    ("Oban" quoted as "The Driftwood Café") gives way to the sentence of the call that says it word for word, where
    one does; with none, it names nothing the call says ("the facility next to the harbour", "Brightfield LED's
    facility" beside "the facility next to the expo")."""
    if proper_noun(value, note["passage"]):
        return
    where = searcher.find(value) if len(value) <= MAX_QUOTE_CHARS else None  # longer than a quote: no place's name
    if where is not None and where.score == 1.0:
        text = transcript.text
        start, end = next(((s, e) for s, e in sentences(text) if s <= where.start < e), (where.start, where.end))
        if proper_noun(value, text[start:end]):
            _rests_on(note, transcript, start, end, quote_found=False, value_score=1.0)
            note["reason"] = "the quote does not say it; the sentence of the call that does is its passage"
            return
    note.update(found=False, reason="no passage says a word of it capitalised: it names no place or organisation")


def _stating(text: str, stated: set[float]) -> list[tuple[int, int]]:
    """The sentences of `text` that state every amount of `stated`, in order."""
    where = _amounts_said(text)
    found = set.intersection(*(set(where.get(amount, ())) for amount in stated)) if stated else set()
    return sorted(found)


@lru_cache(maxsize=4)
def _amounts_said(text: str) -> dict[float, list[tuple[int, int]]]:
    """Each amount `text` states with the sentences that state it: read once a transcript, however many values
    ask (a hostile answer of thousands of items costs a look-up each)."""
    where: dict[float, list[tuple[int, int]]] = {}
    for start, end in sentences(text):
        for amount in amounts(text[start:end]):
            where.setdefault(amount, []).append((start, end))
    return where


# What a model writes for "not said" when it writes a string anyway: read as null.
_NULLISH = frozenset(
    {"", "null", "none", "n/a", "na", "nil", "unknown", "not mentioned", "not stated", "not specified", "not given"}
)
_PARTS = re.compile(r"\s*[,;]\s*|\s+and\s+")


def _near(quote: str, value: str) -> bool:
    """Whether a quote that was not found is still about the value: a fair share of the value's words are in it
    (a paraphrase), not a quote about something else."""
    said, quoted = words(value)[0], set(words(quote)[0])
    return bool(said) and sum(word in quoted for word in said) * 2 >= len(said)


def _within(value: str, quote: str) -> bool:
    """Whether the words of `value` are a run of the words of `quote`."""
    inner = words(value)[0]
    return bool(inner) and run_of(inner, words(quote)[0])


def _nullish(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower().strip(".") in _NULLISH)


def _to_spend(note: dict[str, Any], searcher: Searcher, transcript: Transcript) -> None:
    """An amount resting on a sentence that says nothing of spending ("Forty-eight thousand dollars for one drone?",
    the price said back) gives way to the one sentence of the call that states an amount as the buyer's to spend
    ("we had about twenty grand to spend"), where exactly one does (values.py)."""
    text = transcript.text
    stated = spending(text)
    where = searcher.find(note["passage"])
    if len(stated) != 1 or where is None or any(where.start < end and start < where.end for start, end in stated):
        return  # no one amount to spend, or the passage is in its sentence
    start, end = stated[0]
    _rests_on(
        note,
        transcript,
        start,
        end,
        kept=to_spend(text[start:end], str(note.get("kept", note["value"]))),
        quote_found=False,
        value_score=1.0,
        reason="the quote says nothing of spending; the one sentence of the call that states an amount to spend does",
    )
