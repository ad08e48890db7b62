"""Hand the memory a long transcription freed back to the system, which glibc's allocator would keep.

    give_back()        # True when glibc's malloc_trim released something; False elsewhere (musl, macOS)

Decoding a recording allocates hundreds of megabytes for a few seconds (the batched encoder's attention, the
decoded samples); freed, it stays in the allocator's arenas, so the process ends a long request 200-300 MB above
where it began (bench/README.md, local speech memory). `malloc_trim(0)` returns the free pages of every arena.
It runs in the worker thread after a transcription of at least `TRIM_AFTER_SECONDS` of audio, never on the event
loop; a short request's few megabytes are reused by the next one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["TRIM_AFTER_SECONDS", "give_back"]

TRIM_AFTER_SECONDS = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the allocator's free pages to the system; whether any were."""
    return bool(_TRIM(0)) if _TRIM is not None else False
