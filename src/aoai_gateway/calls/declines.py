"""A request not to be called again: the one thing a buyer says that leaves no doubt about their answer.

    asked_off_the_list("No, please don't. Just take my number off your list.")   # (start, end) of that sentence

"Take my number off your list", "remove us from your call list", "stop calling me", "don't call us again": said by
the buyer, it is a decline, and a sales team must record it (a do-not-call request). Said by the agent ("I'll remove
you from our call list") it answers one: the request is in the first person (me, us, my, our), so the agent's
promise does not count. "Please don't call every day" is not a request to stop: only again / anymore / ever, or a
list, make it one. Grounding sets a property marked `"x-declined": <value>` (the bundled `sentiment`: "negative")
to that value when the call holds such a request, whatever the model answered (a small model called a buyer who
asked exactly this "neutral").
"""

from __future__ import annotations

import re

from .words import sentences

__all__ = ["asked_off_the_list"]

_ME = r"(?:me|us|my\s+(?:number|details|name)|our\s+(?:number|details|names?)|this\s+number)"
_LIST = r"(?:your|the)\s+(?:\w+\s+){0,3}list"
_REQUEST = re.compile(
    rf"\b(?:take|put|cross|strike)\s+{_ME}\s+off\s+{_LIST}"
    rf"|\bremove\s+{_ME}\s+from\s+{_LIST}"
    rf"|\bstop\s+(?:calling|ringing|phoning|contacting)\s+(?:me|us)\b"
    rf"|\b(?:don['\u2019]t|do\s+not|never)\s+(?:call|ring|phone|contact)\s+(?:me|us)\s+(?:again|anymore|ever)\b",
    re.IGNORECASE,
)


def asked_off_the_list(text: str) -> tuple[int, int] | None:
    """Where the first sentence of `text` lies that asks not to be called again, or None."""
    for start, end in sentences(text):
        if _REQUEST.search(text, start, end):
            return start, end
    return None
