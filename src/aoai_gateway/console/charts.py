"""Bar charts drawn on the server as SVG: no chart library, no script, nothing the CSP has to allow.

    chart = bar_chart([("gpt-4o", 120), ("whisper-1", 8)])   # rows of label, value -> geometry for the template
    chart.height, chart.bars[0].width, chart.bars[0].label

The template turns the geometry into `<rect>` and `<text>` elements (attributes, not styles, so the strict
Content-Security-Policy holds); labels are escaped like every other string.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 200
VALUE_WIDTH = 80
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


def bar_chart(rows: list[tuple[str, float]]) -> BarChart:
    """Horizontal bars scaled to the largest value; labels cut to 28 characters (the table has them whole)."""
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    top = max((value for _, value in rows), default=0) or 1
    bars = [
        Bar(label if len(label) <= 28 else label[:27] + "…", value, i * ROW, max(1.0, span * value / top))
        for i, (label, value) in enumerate(rows)
    ]
    return BarChart(bars, WIDTH, max(ROW, ROW * len(bars)), LABEL_WIDTH, BAR, LABEL_WIDTH + span + 6)
