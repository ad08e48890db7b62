"""Names people type (key, event and attendee names, e-mails): refused at the door when they could steer a
terminal, escaped on the way out for rows stored before the door was there.

    clean_label(" Ann Lee")                 # -> "Ann Lee"; ValueError naming the character otherwise
    printable("evil\x1b[2J")                # -> "evil\\x1b[2J": what a table may print

Refused: C0 controls (tab and newline included), DEL, C1 controls, the bidi embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069) that reorder what follows them, and the line and paragraph separators.
"""

from __future__ import annotations

import re
import unicodedata

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_label(value: str) -> str:
    """`value` without surrounding spaces; a ValueError (the caller names the field) when blank or unsafe."""
    found = UNSAFE.search(value)
    if found is not None:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at position {found.start()}; use printable text"
        )
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


def normalised_name(value: str) -> str:
    """How two spellings of one person's name compare: NFKC, case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    return UNSAFE.sub(_escape, text)


__all__ = ["UNSAFE", "clean_label", "normalised_name", "printable"]
