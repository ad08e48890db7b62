"""Where the buyer is: not where the caller calls from, and where the call says the buyer's organisation is.

    callers_place(text)                                       # "Rotterdam": "calling from our office in Rotterdam"
    place_of(text, "Minera Cerro Azul")                       # ("Antofagasta, Chile", the sentence saying so)
    place_the_buyer(fields, evidence, schema_properties, text)   # called by grounding.ground

A place property (`x-proper-noun`) that must differ from the seller (`x-differs-from` naming the field an agent is
`x-introduced-from`: the bundled `location`) is the buyer's, so the place the call's opening says the caller calls
from ("Henrik Dahl ... calling from our office in Rotterdam") is not it: a small model takes the first place it
hears, and calls-dev's calls name the agent's own place as a distractor. Such a value is dropped, and the field,
null then or left null by the model, becomes the place the call says the buyer's organisation is in ("I'm the
maintenance superintendent at Minera Cerro Azul, in Antofagasta, Chile"): the organisation as an `x-organisation`
field gives it, then "in" or "based in", then one to three capitalised words and, after a comma, the region or
country. Written in the evidence with the passage that says so.
"""

from __future__ import annotations

import re
from typing import Any

from .organisations import organisation_field
from .roles import drop, settle
from .schema import differs_from
from .words import CAPITALISED, same_name, sentences, words

__all__ = ["callers_place", "place_of", "place_the_buyer"]

_PLACE = rf"{CAPITALISED}(?:[ \t]+{CAPITALISED}){{0,2}}"
# The caller's own place in the opening: "calling from our office in Rotterdam", "ringing from Northlight in Leeds".
_CALLS_FROM_IN = re.compile(
    r"\b(?i:calling|ringing|phoning)\s+(?i:from)\s+(?:[\w'\u2019-]+\s+){1,4}?(?i:in)\s+(" + _PLACE + ")"
)
_IN = re.compile(r",?\s+(?:based\s+)?in\s+", re.IGNORECASE)
OPENING_CHARS = 300  # where the caller says who and where they are: the call's first sentences


def callers_place(text: str) -> str | None:
    """The place the call's opening says the caller calls from, or None."""
    found = _CALLS_FROM_IN.search(text[:OPENING_CHARS])
    return None if found is None else found[1]


def place_the_buyer(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str) -> int:
    """Drop each buyer's place that is the caller's, and give a null one the place the call says the buyer's
    organisation is in (module docstring); the number of values dropped."""
    dropped = 0
    sellers = {prop["x-introduced-from"] for prop in properties.values() if _introduced(prop)}
    organisations = [fields.get(name) for name, prop in properties.items() if organisation_field(prop)]
    for name, prop in properties.items():
        if not (isinstance(prop, dict) and prop.get("x-proper-noun") is True and sellers & set(differs_from(prop))):
            continue
        value, caller = fields.get(name), callers_place(text)
        if isinstance(value, str) and caller is not None and same_name(value, caller):
            drop(fields, evidence, name, f"the caller's own place ('calling from ... in {caller}'), not the buyer's")
            dropped += 1
        if fields.get(name) is not None:
            continue
        for organisation in organisations:
            found = place_of(text, organisation) if isinstance(organisation, str) else None
            if found is not None and (caller is None or not same_name(found[0], caller)):
                settle(fields, evidence, name, found[0], found[1], f"where the call says {organisation!r} is")
                evidence[name]["quote_found"] = False  # the call's words, not the model's quote
                break
    return dropped


def place_of(text: str, organisation: str) -> tuple[str, str] | None:
    """(the place, its sentence) where `text` says `organisation`, then "in" or "based in" and a place; the
    organisation's name only where the model wrote its place too ("Minera Cerro Azul in Antofagasta, Chile")."""
    name = _IN.split(organisation, maxsplit=1)[0]
    said = r"\s+".join(re.escape(word) for word in name.split())
    if not said:
        return None
    pattern = re.compile(rf"(?i:{said}),?\s+(?i:(?:based\s+)?in)\s+({_PLACE}(?:,\s+{_PLACE})?)")
    for start, end in sentences(text):
        found = pattern.search(text, start, end)
        if found is not None and words(found[1])[0]:
            return found[1], text[start:end]
    return None


def _introduced(prop: Any) -> bool:
    return isinstance(prop, dict) and isinstance(prop.get("x-introduced-from"), str)
