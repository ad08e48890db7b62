"""The buyer's organisation: a person is none, and where the model named another party's, the call says which.

    unname_people(fields, evidence, schema_properties)          # "Dr. Arjun Venkataraman" is no company
    name_the_organisation(fields, evidence, schema_properties, text)   # "operations manager at Kessler Cold Storage"

A property marked `"x-organisation": true` (the bundled `company`) names an organisation. A value that starts with a
person's title ("Dr. Arjun Venkataraman", "Mrs Okafor") names a person: dropped. Where the model gave a value that
grounding dropped (it named the seller, the agent or a person, or its quote is not in the call) the model took the
call for one with a buyer's organisation but named the wrong one: the organisation is then the first one the call
says the buyer works at or is called about, "<role> at <Organisation>", "a quote for <Organisation>", "you run
<Organisation>", its name ending the clause or followed by its place ("at Alder Court Hotel in Galway"; "for TikTok
payments" names a payment, not a buyer); not the seller, the agent, the customer, the place, nor a person the call
addresses ("Am I speaking with ..."). Two capitalised words or more: one word after "at" or "for" is as often a
place or a day ("at Easter", "for Leeds"). With no such organisation, or where the model gave none, nothing changes.
"""

from __future__ import annotations

import re
from typing import Any

from .roles import addressed, drop, settle
from .schema import differs_from
from .words import CAPITALISED, MONTHS_AND_DAYS, same_name, sentences, words

__all__ = ["move_organisations", "name_the_organisation", "organisation_field", "unname_people"]

_TITLED = re.compile(r"^\s*(?i:doctor|dr|mr|mrs|ms|miss|prof|professor)\b\.?\s+" + CAPITALISED)
_AT = re.compile(
    r"\b(?i:at|for|run|runs|running)\s+(?:(?i:the)\s+)?((?:" + CAPITALISED + r"[ \t]+){1,3}" + CAPITALISED + r")"
    r"(?=\s*(?:[,.?!;:]|$)|\s+in\s+" + CAPITALISED + ")"  # ending its clause, or before its place: "in Galway"
)


def unname_people(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any]) -> int:
    """Drop each `x-organisation` value that starts with a person's title; the number dropped."""
    dropped = 0
    for name, prop in properties.items():
        value = fields.get(name)
        if organisation_field(prop) and isinstance(value, str) and _TITLED.match(value):
            drop(fields, evidence, name, "a person, by their title, not an organisation")
            dropped += 1
    return dropped


def move_organisations(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str) -> int:
    """A person's name field (`x-full-name`, not the agent's) whose value the call says as the organisation the buyer
    is at or called about ("the quote we sent on Monday for Tuckwell Pastoral") and never addresses as a person is
    that organisation: dropped there, and the `x-organisation` field it must differ from takes it where null. The
    number of values dropped."""
    dropped = 0
    for name, prop in properties.items():
        value = fields.get(name)
        if not (isinstance(prop, dict) and prop.get("x-full-name") is True and isinstance(value, str)):
            continue
        if "x-introduced-from" in prop or any(same_name(value, person) for person in addressed(text)):
            continue
        sentence = _said_as_organisation(text, value)
        if sentence is None:
            continue
        drop(fields, evidence, name, f"an organisation, as the call says it ({sentence!r}), not a person")
        dropped += 1
        for other in differs_from(prop):
            if organisation_field(properties.get(other)) and fields.get(other) is None:
                reason = f"given by the model as {name}: the organisation the call says the buyer is at"
                settle(fields, evidence, other, value, sentence, reason)
                evidence[other]["quote_found"] = False  # the call's words, not the model's quote
    return dropped


def name_the_organisation(
    fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str
) -> None:
    """Each `x-organisation` field left null where the model gave a value grounding dropped becomes the first
    organisation the call says the buyer is at or called about, when there is one (module docstring)."""
    for name, prop in properties.items():
        if not organisation_field(prop) or fields.get(name) is not None:
            continue
        before = evidence.get(name)
        if not (isinstance(before, dict) and before.get("value") is not None):
            continue  # the model gave none: a call with no buyer's organisation (a private buyer) stays so
        related = [fields.get(other) for other in _related(name, prop, properties)]
        taken = [value for value in related if isinstance(value, str)] + addressed(text)
        for start, end in sentences(text):
            sentence = text[start:end]
            found = next((f for f in _AT.finditer(sentence) if _organisation(f[1], taken)), None)
            if found is None:
                continue
            reason = f"the organisation the call says the buyer is at ({before.get('value')!r} was dropped)"
            settle(fields, evidence, name, found[1], sentence, reason)
            evidence[name]["quote_found"] = False  # the call's words, not the model's quote
            break


def _said_as_organisation(text: str, value: str) -> str | None:
    """The first sentence of `text` that says `value`, word for word, as an organisation ("at / for / run
    <value>"), or None."""
    said = words(value)[0]
    for start, end in sentences(text):
        sentence = text[start:end]
        if any(words(found[1])[0] == said for found in _AT.finditer(sentence)):
            return sentence
    return None


def organisation_field(prop: Any) -> bool:
    """Whether a schema property is marked `"x-organisation": true`."""
    return isinstance(prop, dict) and prop.get("x-organisation") is True


def _related(name: str, prop: dict[str, Any], properties: dict[str, Any]) -> list[str]:
    """The fields whose names an organisation must not be: those it must differ from, those that must differ from
    it (the customer), and the places (`x-proper-noun`)."""
    return [
        other
        for other, theirs in properties.items()
        if other != name
        and isinstance(theirs, dict)
        and (other in differs_from(prop) or name in differs_from(theirs) or theirs.get("x-proper-noun") is True)
    ]


def _organisation(said: str, taken: list[str]) -> bool:
    """Whether `said` may be an organisation: no month or day, and not the name (or the first word) of a related
    field's value or of a person the call addresses."""
    folded = words(said)[0]
    if not folded or MONTHS_AND_DAYS.intersection(folded):
        return False
    return not any(same_name(said, other) or words(other)[0][:1] == folded[:1] for other in taken)
