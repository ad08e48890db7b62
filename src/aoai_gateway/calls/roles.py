"""Who is who in a call: the agent is the one who gives their name as calling from the seller's company.

    introduced = introduction(text, "SkyFarm Drones")   # Introduction("Lena Hoffmann", passage, start, end)
    settle_roles(fields, evidence, schema_properties, text)   # called by grounding.ground

A small model often swaps the two people of a call: the agent says "It's Lena Hoffmann from SkyFarm Drones", the
customer "Bronwyn speaking", and the answer names Lena the customer. The call itself says who the agent is: the
name said next to "from / with / at <the seller's company>" ("this is Rebecca Lindqvist from Orisa Dental
Supply", "my name is Samuel Okafor, from Brightfield LED", "Priya Raman calling from Northlight Solar"), a role of
one to three words allowed between ("my name is Henrik Nyberg, I'm an application engineer with Andes Pumps").

A property marked `"x-introduced-from": "<seller field>"` (the bundled `agent_name`, with `seller_company`) is
settled from that introduction when the call has one: the agent becomes the name introduced, and the person the
model had named the agent, when it is someone else, is the customer (the person's name, `x-full-name`, whose
`x-differs-from` names the agent's) where the model gave no customer, gave the agent's name as the customer, or
where that person names themselves in the call ("this is Doctor Arjun Venkataraman"). Both moves are written in the
evidence, with the introduction's passage as the agent's quote. Without an introduction nothing changes.

Four more settle what the model confused: `swap_companies`, when the model gave the seller as the buyer's company
and the buyer's as the seller (the agent introduced from the one it gave as the buyer's); `settle_seller`, when the
model gave one organisation as both the seller and the buyer's company (the seller's only if someone is introduced
from it or the opening says it after "from"); `settle_buyers_person`, when the call introduces the model's agent
from the buyer's company ("Tobias Grünewald here, operations manager at Kessler Cold Storage": the customer, and
the model's customer the agent); and `name_the_customer`, when the customer is left null (the model gave the
agent, or no one): the first other person the call addresses or who names themselves ("Am I speaking with Callum
Fairbairn?", "Tobias Grünewald here"). Before that, `unname_organisations` drops a customer the model gave as an
organisation someone in the call is introduced from ("This is Rebecca from Orisa Dental Supply": not a person).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .schema import differs_from
from .words import CAPITALISED, MONTHS_AND_DAYS, same_name, sentences, words

# A name: one to four capitalised words.
_NAME = rf"((?:{CAPITALISED}\s+){{0,3}}{CAPITALISED})"
_INTRODUCTION = re.compile(
    r"(?i:\b(?:this is|it's|it is|my name is|i'm|i am|name's)\s+)?"
    + _NAME
    + r",?\s+(?i:(?:and\s+)?(?:(?:i'm|i am)\s+(?:(?:an?|the)\s+(?:[a-z][\w-]*\s+){1,3})?)?"
    + r"(?:calling\s+|ringing\s+|here\s+)?(?:from|with|at)\s+(?:the\s+)?)"
    + r"([\w'\u2019-]+)"
)
_SELF_NAMING = (
    r"(?i:\b(?:this is|it's|it is|my name is|i'm|i am|name's|speaking,?))\s+"
    r"(?:(?i:doctor|dr\.?|mr\.?|mrs\.?|ms\.?)\s+)?"
)
# The customer as the agent addresses them ("Am I speaking with Callum Fairbairn?", "I'm looking for Eilidh
# MacAskill") or as they name themselves ("this is Doctor Arjun Venkataraman", "Tobias Grünewald here").
_ADDRESSED = (
    re.compile(
        r"(?i:\b(?:speaking (?:with|to)|speak (?:with|to)|looking for|ask(?:ing)? for|is that|is this|this is"
        r"|my name is|it's|it is|i'm|i am)\s+"
        r"(?:(?:doctor|dr\.?|mr\.?|mrs\.?|ms\.?)\s+)?)" + _NAME
    ),
    re.compile(_NAME + r",?\s+(?i:here|speaking)\b"),
    re.compile(r"(?i:\bspeaking,\s+)" + _NAME),  # "Speaking, Kgomotso Mahlangu."
)
_CALENDAR = MONTHS_AND_DAYS | {"today", "tomorrow", "christmas", "easter", "spring", "summer", "autumn", "winter"}
_CUE_WORDS = frozenset({"this", "is", "its", "it", "my", "name", "im", "i", "am", "names", "hi", "hello", "yes"})


@dataclass(frozen=True, slots=True)
class Introduction:
    name: str
    passage: str
    start: int
    end: int


def introduction(text: str, seller: str) -> Introduction | None:
    """The first name said as calling from `seller` (its first word, folded, after from / with / at)."""
    wanted = words(seller)[0]
    if not wanted:
        return None
    for found in _INTRODUCTION.finditer(text):
        if words(found[2])[0][:1] != wanted[:1]:
            continue
        name_words = words(found[1])[0]
        while name_words and name_words[0] in _CUE_WORDS:  # "Hi" or "This" caught as capitalised words
            name_words = name_words[1:]
        if not name_words:
            continue
        name = " ".join(found[1].split()[-len(name_words) :])
        at = found.start(2)
        whole = at + len(seller)  # the passage runs to the seller's last word where the call says it all
        end = whole if words(text[at:whole])[0] == wanted else found.end()
        return Introduction(name, text[found.start() : end], found.start(), end)
    return None


def names_themselves(text: str, name: str) -> bool:
    """Whether `name` is said after "this is", "my name is", "I'm" and the like (a title between allowed)."""
    said = name.split()
    if not said:
        return False
    # The name's words as said, each allowing what the folding forgives (case), in order.
    pattern = _SELF_NAMING + r"\s+".join(re.escape(word) for word in said if word.lower() not in _TITLES)
    return re.search(pattern, text, re.IGNORECASE) is not None


_TITLES = frozenset({"doctor", "dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."})


def settle_roles(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str) -> int:
    """Apply the introduction to each `x-introduced-from` field and the field that must differ from it; the number
    of values dropped (a seller that is the buyer's company)."""
    dropped = 0
    for agent_field, prop in properties.items():
        seller_field = prop.get("x-introduced-from") if isinstance(prop, dict) else None
        if not isinstance(seller_field, str):
            continue
        swap_companies(seller_field, fields, evidence, properties, text)
        dropped += settle_seller(seller_field, fields, evidence, properties, text)
        dropped += settle_buyers_person(agent_field, seller_field, fields, evidence, properties, text)
        seller = fields.get(seller_field)
        if not isinstance(seller, str):
            continue
        introduced = introduction(text, seller)
        if introduced is None:
            continue
        named = fields.get(agent_field)
        if isinstance(named, str) and same_name(named, introduced.name):
            continue
        original = evidence.get(agent_field)
        reason = f"the one who calls from {seller!r}" + (f" (the model named {named!r})" if named else "")
        settle(fields, evidence, agent_field, introduced.name, introduced.passage, reason)
        if not isinstance(named, str):
            continue
        for customer_field, other in properties.items():
            # The customer: a person's name (x-full-name) that must differ from the agent's; a place that must
            # differ from them too is no one to move a person into.
            if agent_field not in differs_from(other) or other.get("x-full-name") is not True:
                continue
            customer = fields.get(customer_field)
            if not isinstance(customer, str):
                move = True  # no customer: the other person the model named is theirs
            elif same_name(customer, introduced.name):
                move = True  # the agent taken for the customer: swapped
            else:
                move = not same_name(customer, named) and names_themselves(text, named)
            if move:
                moved = dict(original) if isinstance(original, dict) else {}
                moved.pop("was", None)
                before = evidence.get(customer_field)
                fields[customer_field] = named
                evidence[customer_field] = {
                    **moved,
                    "value": named,
                    "found": True,
                    "reason": f"named by the model as {agent_field}, who is {introduced.name!r} (from {seller!r})",
                    "was": was(before),
                }
    return dropped


def unname_organisations(
    fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str
) -> int:
    """A person's name field (`x-full-name`, not the agent's) whose value someone in the call is introduced from
    ("This is Rebecca from Orisa Dental Supply" for a customer given as "Orisa Dental Supply") names an
    organisation, not a person: dropped (name_the_customer may then find the person). The number dropped."""
    dropped = 0
    for name, prop in properties.items():
        value = fields.get(name)
        if not (isinstance(prop, dict) and prop.get("x-full-name") is True and isinstance(value, str)):
            continue
        if "x-introduced-from" in prop:
            continue
        found = introduction(text, value)
        if found is None or same_name(found.name, value):
            continue
        drop(fields, evidence, name, f"an organisation, not a person ({found.passage!r})")
        dropped += 1
    return dropped


def name_the_customer(fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str) -> None:
    """A person's name field (`x-full-name`) that must differ from an `x-introduced-from` agent and is null (the
    model gave the agent, or no one) becomes the first other person the call addresses or who names themselves,
    when there is one: the call's customer. Written in the evidence with the passage that names them."""
    for agent_field, prop in properties.items():
        if not (isinstance(prop, dict) and isinstance(prop.get("x-introduced-from"), str)):
            continue
        agent = fields.get(agent_field)
        if not isinstance(agent, str):
            continue
        seller = fields.get(prop["x-introduced-from"])
        for customer_field, other in properties.items():
            if fields.get(customer_field) is not None or agent_field not in differs_from(other):
                continue
            if other.get("x-full-name") is not True:
                continue
            # Not the agent, the seller, nor what else the customer must differ from (the buyer's company).
            taken = [fields.get(field) for field in differs_from(other)] + [agent, seller]
            found = _other_person(text, [value for value in taken if isinstance(value, str)])
            if found is None:
                continue
            name, start, end = found
            reason = f"the other person the call names than the agent ({agent!r})"
            settle(fields, evidence, customer_field, name, text[start:end], reason)


def _other_person(text: str, taken: list[str]) -> tuple[str, int, int] | None:
    """The first name the call addresses or that names itself, other than those `taken`: (name, start, end)."""
    for name, start, end in _addressed(text):
        if not any(same_name(name, other) for other in taken):
            return name, start, end
    return None


def addressed(text: str) -> list[str]:
    """The names the call addresses or that name themselves ("Am I speaking with Callum Fairbairn?"), in order."""
    return [name for name, _, _ in _addressed(text)]


def _addressed(text: str) -> Iterator[tuple[str, int, int]]:
    said_where = sorted(
        (found for pattern in _ADDRESSED for found in _overlapping(pattern, text)), key=lambda f: f.start()
    )
    for found in said_where:
        name_words, said = words(found[1])[0], found[1].split()
        while name_words and name_words[0] in _CUE_WORDS:
            name_words, said = name_words[1:], said[1:]
        if not name_words or _CALENDAR.intersection(name_words):  # "it's March", "this is Thursday"
            continue
        yield " ".join(said).strip(",.?!"), found.start(), found.end()


def _overlapping(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Every match of `pattern`, each searched from the character after the last one's start: a cue caught as a
    name ("this is Is that Per Lund") does not hide the match inside it ("Is that Per Lund")."""
    at = 0
    while (found := pattern.search(text, at)) is not None:
        yield found
        at = found.start() + 1


def settle_seller(
    seller_field: str, fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str
) -> int:
    """When the model gave one organisation as both the seller and a field that must differ from it (the buyer's
    company), say which it is: the seller when someone introduces themselves from it, or the opening says it
    after "from" ("here from Pipewell CRM"); otherwise the buyer's, and the seller is dropped, since a call names
    the seller as the agent introduces themselves. Leaving the buyer's field to be dropped is grounding's `_apart`.
    """
    seller = fields.get(seller_field)
    if not isinstance(seller, str):
        return 0
    for name, prop in properties.items():
        value = fields.get(name)
        if seller_field not in differs_from(prop) or not isinstance(value, str) or not same_name(value, seller):
            continue
        calls_from = _calls_from(_opening(text))
        if calls_from is not None and _head(calls_from[0]) != _head(seller):
            # "Tomás Herrera here from Pipewell CRM": the seller is another; whoever is introduced from this
            # organisation ("I'm the sales operations manager at Harbourline") is the buyer's person.
            reason = f"the call opens calling from another ({calls_from[1]!r}): it is {name}"
        elif introduction(text, seller) is not None or _named_from(_opening(text), seller):
            return 0
        else:
            reason = f"no one in the call is from it: it is {name}"
        drop(fields, evidence, seller_field, f"the model gave it as {name} too, and {reason}")
        return 1
    return 0


def swap_companies(
    seller_field: str, fields: dict[str, Any], evidence: dict[str, Any], properties: dict[str, Any], text: str
) -> None:
    """The seller and the buyer's company (a field that must differ from the seller's) given the wrong way round:
    the agent is introduced from the one the model gave as the buyer's ("This is Kevin Tran from Tabletop"), and
    no one from, nor the opening after "from", the one it gave as the seller's. Each is put in the other's place,
    written in the evidence with the model's answers kept (`was`)."""
    seller = fields.get(seller_field)
    if not isinstance(seller, str):
        return
    for company_field, prop in properties.items():
        company = fields.get(company_field)
        if seller_field not in differs_from(prop) or not isinstance(company, str) or same_name(company, seller):
            continue
        introduced = introduction(text, company)
        if introduced is None or introduction(text, seller) is not None or _named_from(_opening(text), seller):
            continue
        seller_note, company_note = evidence.get(seller_field), evidence.get(company_field)
        because = f"the agent is introduced from {company!r} ({introduced.passage!r})"
        fields[seller_field], fields[company_field] = company, seller
        evidence[seller_field] = {
            **(company_note or {}),
            "value": company,
            "reason": f"given by the model as {company_field}; {because}",
            "was": was(seller_note),
        }
        evidence[company_field] = {
            **(seller_note or {}),
            "value": seller,
            "reason": f"given by the model as {seller_field}; {because}",
            "was": was(company_note),
        }
        return


def settle_buyers_person(
    agent_field: str,
    seller_field: str,
    fields: dict[str, Any],
    evidence: dict[str, Any],
    properties: dict[str, Any],
    text: str,
) -> int:
    """The agent the model gave is the buyer's when the call introduces them from the buyer's company (a field that
    must differ from the seller's): "Tobias Grünewald here, operations manager at Kessler Cold Storage". They are
    then the customer (the person's name, `x-full-name`, that must differ from the agent), and the person the model
    gave as the customer, someone else, is the agent; with no such person the agent is dropped. Not where the call
    opens saying that company after "from": then it is the seller's, which the model took for the buyer's. The
    number of values dropped."""
    agent = fields.get(agent_field)
    if not isinstance(agent, str):
        return 0
    for company_field, prop in properties.items():
        company = fields.get(company_field)
        if seller_field not in differs_from(prop) or not isinstance(company, str) or company_field == agent_field:
            continue
        if _named_from(_opening(text), company):  # the call opens calling from it: the seller's, whatever the model
            continue
        seller = fields.get(seller_field)
        if isinstance(seller, str) and same_name(seller, company):  # one organisation for both: settle_seller's
            continue
        passage = _introduced_at(text, agent, company)
        if passage is None:
            continue
        for customer_field, other in properties.items():
            if agent_field not in differs_from(other) or other.get("x-full-name") is not True:
                continue
            customer = fields.get(customer_field)
            theirs = customer if isinstance(customer, str) and not same_name(customer, agent) else None
            reason = f"introduced from the buyer's {company_field} ({company!r}): the buyer's person"
            agent_note, customer_note = evidence.get(agent_field), evidence.get(customer_field)
            fields[customer_field] = agent
            evidence[customer_field] = {
                "value": agent,
                "quote": passage,
                "found": True,
                "score": 1.0,
                "reason": f"{reason}, given by the model as {agent_field}",
                "was": was(customer_note),
            }
            fields[agent_field] = theirs
            if theirs is None:
                evidence[agent_field] = {**(agent_note or {}), "found": False, "reason": f"dropped: {reason}"}
                evidence[agent_field]["was"] = was(agent_note)
                return 1
            evidence[agent_field] = {
                **(customer_note or {"value": theirs}),
                "value": theirs,
                "reason": f"given by the model as {customer_field}, the other person than {agent!r} ({reason})",
                "was": was(agent_note),
            }
            return 0
    return 0


_INTRODUCED_WITHIN = 10  # words from a person's name to "at / from / with <company>" in the sentence introducing them


def _introduced_at(text: str, name: str, company: str) -> str | None:
    """The sentence of `text` that says `name` and then, within `_INTRODUCED_WITHIN` words, `company` (its first
    word) after "at", "from" or "with": where the call introduces that person as being from that company."""
    name_words, wanted = words(name)[0], words(company)[0]
    if not name_words or not wanted:
        return None
    for start, end in sentences(text):
        said = words(text[start:end])[0]
        for at in range(len(said) - len(name_words) + 1):
            if said[at : at + len(name_words)] != name_words:
                continue
            after = at + len(name_words)
            window = said[after : after + _INTRODUCED_WITHIN + 1]
            if any(a in {"at", "from", "with"} and b == wanted[0] for a, b in itertools.pairwise(window)):
                return text[start:end]
    return None


OPENING_WORDS = 25  # where the agent says whom they call from: the call's first words


def _opening(text: str) -> str:
    found = list(itertools.islice(re.finditer(r"\S+", text), OPENING_WORDS))
    return text[: found[-1].end()] if len(found) == OPENING_WORDS else text


# The agent saying whom they call from: "Tomás Herrera here from Pipewell CRM", "Priya Raman calling from ...",
# "Fatima Al-Sayed speaking, from ..."; not "calling from our office".
_CALLS_FROM = re.compile(
    r"\b(?i:here|calling|ringing|phoning|speaking),?\s+(?i:from)\s+(?:(?i:the)\s+)?"
    r"(?!(?i:our|my|your|their|his|her|its|this|that|home|work)\b)([\w'\u2019-]+)"
)


def _calls_from(text: str) -> tuple[str, str] | None:
    """(the first word of the organisation, the passage) where `text` says whom its speaker calls from; else None."""
    found = _CALLS_FROM.search(text)
    return None if found is None else (found[1], found[0])


def _named_from(text: str, company: str) -> bool:
    """Whether `text` says `company` (its first word but "the") right after "from" (and any "the")."""
    wanted = _head(company)
    said = [word for word in words(text)[0] if word != "the"]
    return wanted is not None and any(a == "from" and b == wanted for a, b in itertools.pairwise(said))


def _head(name: str) -> str | None:
    """The first word of an organisation's name as compared: folded, "the" passed over ("The Driftwood Café")."""
    return next((word for word in words(name)[0] if word != "the"), None)


def was(note: Any) -> dict[str, Any]:
    """What the model answered for a field whose value the call itself settled: its value and quote, kept in
    the evidence (`was`) so a reviewer sees both, and a re-grounding can start from the model's answer again."""
    if isinstance(note, dict):
        inner = note.get("was")
        if isinstance(inner, dict):
            return inner  # settled twice: the model's answer is the first
        return {"value": note.get("value"), "quote": note.get("quote")}
    return {"value": None, "quote": None}


def drop(fields: dict[str, Any], evidence: dict[str, Any], name: str, reason: str) -> None:
    """Null field `name`, its evidence saying why ("dropped: <reason>") and keeping what the model said (`was`)."""
    before = evidence.get(name)
    evidence[name] = {
        **(before if isinstance(before, dict) else {"value": fields.get(name)}),
        "found": False,
        "reason": f"dropped: {reason}",
        "was": was(before),
    }
    fields[name] = None


def settle(fields: dict[str, Any], evidence: dict[str, Any], name: str, value: str, quote: str, reason: str) -> None:
    """Set field `name` to `value`, which the call's own words settled (`quote`), keeping what the model said."""
    before = evidence.get(name)
    fields[name] = value
    evidence[name] = {"value": value, "quote": quote, "found": True, "score": 1.0, "reason": reason, "was": was(before)}
