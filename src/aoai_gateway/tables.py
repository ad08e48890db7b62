"""Plain-text tables for the command line: columns padded to their widest cell, two spaces apart.

print(text_table([("MODEL", "DEPLOYMENT"), ("gpt-4o", "prod-4o")]))

Every cell is escaped (`\\x1b` for ESC, `\\u202e` for a bidi override): rows stored before names were checked
must not be able to clear a terminal or reorder what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from .labels import printable


def text_table(rows: Sequence[Sequence[str]]) -> str:
    cells = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)
