"""Plain-text tables for the command line: columns padded to their widest cell, two spaces apart.

print(text_table([("MODEL", "DEPLOYMENT"), ("gpt-4o", "prod-4o")]))
"""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
