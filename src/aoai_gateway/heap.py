"""Keeping CPython's cycle collector off the request path of a long-running gateway process.

    policy = HeapPolicy(settings.server)      # once the app has started, in each serving process
    policy.start(loop)
    ...
    policy.stop()

Why: a full collection walks every tracked object in the process. Start-up leaves a few hundred thousand of them
(modules, settings, the routing table) and each open stream holds a hundred or so; with thousands of streams a
full pass takes hundreds of milliseconds, during which no chunk moves (bench/README.md has the figures).

What this does instead:
- After start-up and then every `server.gc_freeze_seconds`, a young collection (cheap: it walks only what was
  allocated since the last one) and `gc.freeze()` (constant time): whatever lived that long moves to the permanent
  generation, which no collection walks. Objects there are still freed the moment their last reference goes.
- The young generation's threshold is raised (`_YOUNG_THRESHOLD`): most requests finish before a young pass, so
  their objects die by reference count and are never promoted.
- What freezing can hide is cyclic garbage among frozen objects. A full pass over everything (unfreeze, collect,
  freeze again) runs only when the process's resident memory has grown to twice what it was after the previous
  full pass, and at most once per `server.gc_full_pass_minutes`: leaks stay bounded, and steady load (many
  streams, a stable population) never pays for a pass. Resident memory is the measure because it costs one read
  of /proc/self/statm; counting the frozen objects (`gc.get_freeze_count()`) walks all of them, 18 ms per
  million. Where /proc is missing, a full pass simply runs every `gc_full_pass_minutes`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time

from .config import ServerSettings

log = logging.getLogger("aoai_gateway.heap")

_YOUNG_THRESHOLD = 5_000  # CPython's default is 700 allocations
_GROWTH = 2.0


class HeapPolicy:
    """The collector policy above, driven by a timer on the serving event loop."""

    def __init__(self, settings: ServerSettings) -> None:
        self.freeze_seconds = settings.gc_freeze_seconds
        self.full_pass_seconds = settings.gc_full_pass_minutes * 60
        self.baseline = 0  # resident bytes after the last full pass
        self.full_passes = 0
        self._last_full = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._thresholds = gc.get_threshold()

    @property
    def enabled(self) -> bool:
        return self.freeze_seconds > 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.enabled:
            return
        gc.set_threshold(_YOUNG_THRESHOLD, *self._thresholds[1:])
        self._full_pass()
        self._timer = loop.call_later(self.freeze_seconds, self._tick, loop)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.enabled:
            gc.unfreeze()
            gc.set_threshold(*self._thresholds)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        resident = resident_bytes()
        grown = resident is None or resident > _GROWTH * self.baseline
        if grown and now - self._last_full >= self.full_pass_seconds:
            self._full_pass()
        else:
            gc.collect(1)
            gc.freeze()
        self._timer = loop.call_later(self.freeze_seconds, self._tick, loop)

    def _full_pass(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.baseline = resident_bytes() or 0
        self._last_full = time.monotonic()
        self.full_passes += 1
        log.info(  # rare by design (see above): worth a line when it happens, with its cost
            "full garbage collection: %d unreachable, %.0f MB resident after it, %.1f ms",
            found,
            self.baseline / 1e6,
            (time.perf_counter() - started) * 1000,
        )


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident memory, from /proc (a read of a few bytes, no disk); None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["HeapPolicy", "resident_bytes"]
