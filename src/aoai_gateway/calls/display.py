"""Text from recordings (file names, transcripts, extracted fields) made safe to print on a terminal.

    print(printable(record.name))            # "evil\x1b]0;pwned\x07.wav" -> "evil\\x1b]0;pwned\\x07.wav"
    print(json_text(record.document, 2))     # JSON, every control and invisible mark as \\uXXXX

A file name or a caller's words reach the model and the store unchanged; only what is shown is escaped. ESC
starts colour, window-title, hyperlink and clipboard sequences; U+009B is a one-character CSI; bidi overrides
and zero-width marks make a line read as something else.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["json_text", "printable"]

# C0 and C1 controls, DEL, and the invisible marks that reorder or split what is shown.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
# What json.dumps(ensure_ascii=False) leaves raw: it escapes C0 itself.
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: str, keep: str = "") -> str:
    """`text` with every control or invisible mark (but those in `keep`) written as `\\x1b`, `\\u202e`, ..."""
    return _UNPRINTABLE.sub(lambda m: m[0] if m[0] in keep else ascii(m[0])[1:-1], text)


def json_text(value: Any, indent: int | None = None) -> str:
    """`json.dumps(value, ensure_ascii=False)` with no control or invisible mark left raw; the same JSON value."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    # Outside strings JSON is ASCII, so these are inside strings, where \uXXXX means the same character.
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
