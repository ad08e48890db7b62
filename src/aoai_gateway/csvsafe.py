"""CSV cells a spreadsheet will not run: every CSV the project writes passes its cells through here.

    writer.writerow(neutralised(["=cmd|' /C calc'!A0", -3, "Acme"]))  # ["'=cmd|' /C calc'!A0", -3, "Acme"]

Excel, LibreOffice and Google Sheets read a cell that starts with `=`, `+`, `-` or `@` as a formula (DDE
payloads such as `=cmd|' /C calc'!A0` run programs), and a leading tab or carriage return hides such a start
from a naive check. As OWASP recommends, such a text cell gets a leading single quote, which spreadsheets show
as text and do not evaluate. The full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20) are treated the same, as
some locales' spreadsheets convert them.

Only text is changed: an `int` or `float` (a duration, a count, -3 in a numeric field) is written as the number
it is, since a number cannot carry a formula. The same characters in a string ("-3" typed as text) get the quote:
text is never trusted to be what it looks like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["FORMULA_STARTS", "neutralise", "neutralised", "neutralised_mapping"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

K = TypeVar("K")


def neutralise(value: object) -> object:
    """The cell as it may be written: text starting like a formula gets a leading `'`; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralised(row: Iterable[object]) -> list[object]:
    """A row for `csv.writer(...).writerow`, every cell neutralised."""
    return [neutralise(value) for value in row]


def neutralised_mapping(row: Mapping[K, object]) -> dict[K, object]:
    """A row for `csv.DictWriter(...).writerow`, every value neutralised."""
    return {key: neutralise(value) for key, value in row.items()}
