"""A sliding one-minute window of counts in one-second buckets: requests or tokens per minute.

window = MinuteWindow()
window.add(now, 1)
window.total(now)    # the last 60 seconds
"""

from __future__ import annotations


class MinuteWindow:
    __slots__ = ("_buckets", "_seconds")

    def __init__(self) -> None:
        self._buckets = [0] * 60
        self._seconds = [0] * 60

    def add(self, now: float, amount: int) -> None:
        second = int(now)
        index = second % 60
        if self._seconds[index] != second:
            self._seconds[index] = second
            self._buckets[index] = 0
        self._buckets[index] += amount

    def total(self, now: float) -> int:
        oldest = int(now) - 59
        return sum(count for count, second in zip(self._buckets, self._seconds, strict=True) if second >= oldest)

    def frees_at(self, now: float) -> float:
        """When the oldest counted second leaves the window."""
        oldest = int(now) - 59
        live = [
            second for second, count in zip(self._seconds, self._buckets, strict=True) if second >= oldest and count
        ]
        return (min(live) + 60) if live else now
