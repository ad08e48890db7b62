"""Viewers of an event's live view share one summary for a few seconds; a failed read is not kept."""

from __future__ import annotations

import asyncio

import pytest

from aoai_gateway.console.live import SharedSummaries, Summary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_viewers_share_a_summary_until_it_is_seconds_old() -> None:
    clock, reads = Clock(), []

    async def read() -> Summary:
        reads.append(clock.now)
        await asyncio.sleep(0.01)
        return {"until": clock.now}

    shared = SharedSummaries(5, clock)
    # Three viewers at once: one read.
    answers = await asyncio.gather(*(shared.get(("evt_1", 15, 10), read) for _ in range(3)))
    assert answers == [{"until": 100.0}] * 3 and reads == [100.0]
    clock.now = 104.9
    assert await shared.get(("evt_1", 15, 10), read) == {"until": 100.0}
    # Another event, or other parameters, are other summaries.
    assert await shared.get(("evt_2", 15, 10), read) == {"until": 104.9}
    assert await shared.get(("evt_1", 30, 10), read) == {"until": 104.9}
    clock.now = 105.0  # as old as allowed: read again
    assert await shared.get(("evt_1", 15, 10), read) == {"until": 105.0}
    assert reads == [100.0, 104.9, 104.9, 105.0]


async def test_a_failed_read_is_not_kept_and_a_gone_viewer_does_not_cancel_it() -> None:
    clock, calls = Clock(), [0]

    async def failing() -> Summary:
        calls[0] += 1
        raise LookupError("no such event")

    shared = SharedSummaries(5, clock)
    for _ in range(2):
        with pytest.raises(LookupError):
            await shared.get("evt_x", failing)
    assert calls == [2]
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> Summary:
        started.set()
        await release.wait()
        return {"ok": True}

    first = asyncio.ensure_future(shared.get("evt_1", slow))
    await started.wait()
    second = asyncio.ensure_future(shared.get("evt_1", slow))
    await asyncio.sleep(0)
    first.cancel()  # the first viewer closed the page
    release.set()
    assert await second == {"ok": True}


async def test_old_entries_are_dropped_when_full() -> None:
    clock = Clock()

    async def read() -> Summary:
        return {}

    shared = SharedSummaries(5, clock, size=2)
    await shared.get("a", read)
    await shared.get("b", read)
    clock.now += 10
    await shared.get("c", read)
    assert list(shared._entries) == ["c"]
