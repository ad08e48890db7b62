"""A bounded pool of worker threads for a local model: `workers` run, `queue_size` wait, the rest are refused.

pool = SpeechPool(workers=1, queue_size=8)          # local chat models use it too: SpeechPool(1, 8, "chat")
result = await pool.submit(job)          # job() runs in a worker thread; ModelBusy when the queue is full
await pool.close()

Threads, not processes: CTranslate2, PyAV, onnxruntime and numpy release the GIL for all their heavy work, so
threads share one copy of the weights and overlap fully, and the event loop keeps relaying other requests
while a file transcribes (measured in bench/README.md). A slot is held until the worker thread is really done,
even when the caller gave up earlier, so the queue always tells the truth about the CPU.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple, TypeVar

from ..errors import ModelBusy, ModelUnavailable

T = TypeVar("T")

# Until a job finished, assume one takes this long (a one-minute call takes 2 to 4 s on two cores).
_FIRST_GUESS_SECONDS = 5.0


class PoolSize(NamedTuple):
    workers: int  # transcriptions running at once
    replicas: int  # CTranslate2 workers: batches decoded at once, by any transcription
    cpu_threads: int  # threads of each replica


def pool_size(workers: int, cpu_threads: int) -> PoolSize:
    """The pool and model sizes for the settings' values, 0 meaning "sized to this machine".

    One transcription per 4 cores; one thread per replica and one replica per core: on two cores a ten-minute
    call's batches decode on two one-thread replicas 15-20% sooner than on one replica with both threads
    (small matrices spread poorly over threads), and a short call's few windows are shared by the replicas too
    (engine.py). `cpu_threads: 2` on two cores gives one replica of two threads.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = workers or max(1, cores // 4)
    cpu_threads = cpu_threads or 1
    return PoolSize(workers, max(workers, cores // cpu_threads), cpu_threads)


class SpeechPool:
    def __init__(self, workers: int, queue_size: int, label: str = "speech") -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self.label = label
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=label)
        self._lock = threading.Lock()
        self._admitted = 0
        self._job_seconds = _FIRST_GUESS_SECONDS
        self._closed = False

    @property
    def admitted(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Queue `job`; raise ModelBusy (429, with Retry-After) when `workers + queue_size` are already in."""
        with self._lock:
            if self._closed:
                raise ModelUnavailable(f"The local {self.label} model is shutting down; retry on another instance.")
            if self._admitted >= self.capacity:
                raise ModelBusy(self.retry_after())
            self._admitted += 1
        started = time.monotonic()

        def timed() -> T:
            nonlocal started
            started = time.monotonic()
            return job()

        def finished(future: Future[T]) -> None:
            with self._lock:
                self._admitted -= 1
                if not future.cancelled():
                    # An exponential average of run times: what the next free slot is estimated by.
                    self._job_seconds += 0.2 * (time.monotonic() - started - self._job_seconds)

        future = self._executor.submit(timed)
        future.add_done_callback(finished)
        return asyncio.wrap_future(future)

    def retry_after(self) -> float:
        """Seconds until a queue slot is likely to free up: one average job shared by the workers."""
        return max(1.0, math.ceil(self._job_seconds / self.workers))

    async def close(self) -> None:
        with self._lock:
            self._closed = True
        # Waiting jobs are dropped; running ones stop at their next batch (their callers were cancelled).
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
