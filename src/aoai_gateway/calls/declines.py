"""A request not to be called again: the one thing a buyer says that leaves no doubt about their answer.

    asked_off_the_list("No, please don't. Just take my number off your list.")   # (start, end) of that sentence

"Take my number off your list", "remove us from your call list", "stop calling me", "don't call us again": said by
the buyer, it is a decline, and a sales team must record it (a do-not-call request). Said by the agent ("I'll remove
you from our call list") it answers one: the request is in the first person (me, us, my, our), so the agent's
promise does not count. "Please don't call every day" is not a request to stop: only again / anymore / ever, or a
list, make it one. Grounding sets a property marked `"x-declined": <value>` (the bundled `sentiment`: "negative")
to that value when the call holds such a request, whatever the model answered (a small model called a buyer who
asked exactly this "neutral").

A plain refusal counts too: "we're not interested (anymore)", "it's not worth it for us", in the first person and
about the offer, so "I'm not interested in the add-ons" (what follows is "in") and "is it worth it for us?" do not.
`declined` says where the first sentence of either kind lies, and which kind it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .words import sentences

__all__ = ["Decline", "asked_off_the_list", "declined"]

_ME = r"(?:me|us|my\s+(?:number|details|name)|our\s+(?:number|details|names?)|this\s+number)"
_LIST = r"(?:your|the)\s+(?:\w+\s+){0,3}list"
_REQUEST = re.compile(
    rf"\b(?:take|put|cross|strike)\s+{_ME}\s+off\s+{_LIST}"
    rf"|\bremove\s+{_ME}\s+from\s+{_LIST}"
    rf"|\bstop\s+(?:calling|ringing|phoning|contacting)\s+(?:me|us)\b"
    rf"|\b(?:don['\u2019]t|do\s+not|never)\s+(?:call|ring|phone|contact)\s+(?:me|us)\s+(?:again|anymore|ever)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(?:we['\u2019]re|we\s+are|i['\u2019]m|i\s+am)\s+(?:just\s+|really\s+|simply\s+)?not\s+interested\b(?!\s+in\b)"
    r"|\b(?:it['\u2019]s|it\s+is|that['\u2019]s|that\s+is)\s+(?:just\s+|really\s+|simply\s+)?not\s+worth\s+it"
    r"\s+(?:for|to)\s+(?:us|me)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Decline:
    start: int  # the sentence's characters in the text
    end: int
    reason: str  # what the buyer does there, for the evidence


def asked_off_the_list(text: str) -> tuple[int, int] | None:
    """Where the first sentence of `text` lies that asks not to be called again, or None."""
    for start, end in sentences(text):
        if _REQUEST.search(text, start, end):
            return start, end
    return None


def declined(text: str) -> Decline | None:
    """The first sentence of `text` that asks not to be called again, else the first that refuses the offer."""
    if (request := asked_off_the_list(text)) is not None:
        return Decline(*request, "the buyer asks not to be called again")
    for start, end in sentences(text):
        if _REFUSAL.search(text, start, end):
            return Decline(start, end, "the buyer refuses the offer")
    return None
