"""Bar charts drawn on the server as SVG: no chart library, no script, nothing the CSP has to allow.

    chart = bar_chart([("gpt-4o", 120), ("whisper-1", 8)])   # rows of label, value -> geometry for the template
    chart.height, chart.bars[0].width, chart.bars[0].label

The template turns the geometry into `<rect>` and `<text>` elements (attributes, not styles, so the strict
Content-Security-Policy holds); labels are escaped like every other string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Small enough that on a phone's 360-pixel column the 12-unit text stays about 11 pixels high.
WIDTH = 400
LABEL_WIDTH = 150
VALUE_WIDTH = 60
LABEL_CHARACTERS = 21
ROW = 26
BAR = 18


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    bar_height: int
    value_x: float


def bar_chart(rows: Sequence[tuple[str, float]]) -> BarChart:
    """Horizontal bars scaled to the largest value; labels cut to fit (the table beside has them whole)."""
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    top = max((value for _, value in rows), default=0) or 1
    bars = [Bar(_cut(label), value, i * ROW, max(1.0, span * value / top)) for i, (label, value) in enumerate(rows)]
    return BarChart(bars, WIDTH, max(ROW, ROW * len(bars)), LABEL_WIDTH, BAR, LABEL_WIDTH + span + 6)


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
