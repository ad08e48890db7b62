"""Several worker processes sharing one listening socket, supervised by the process that bound it.

    run_workers(4, serve_socket, (settings, sock))    # blocks until SIGTERM or SIGINT, then drains every worker

`server.workers` > 1 runs the gateway this way. The parent binds the socket (a taken port fails before anything
starts), then starts each worker with the `spawn` method: a fresh interpreter given the validated settings and the
socket (pickled; nothing is read again), which builds its own gateway and accepts from the shared socket, so the
kernel spreads connections over the workers.

- SIGTERM or SIGINT to the parent is passed to every worker as SIGTERM; each drains as a single process does
  (`server.drain_seconds`), and the parent returns once all have ended.
- A worker that ends on its own is replaced. One that ends with `STARTUP_FAILURE` never started serving (its
  gateway could not be built): the others are stopped and the parent fails, as the same error would come back
  in every replacement.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["STARTUP_FAILURE", "WorkersFailed", "run_workers"]

STARTUP_FAILURE = 3  # a worker's exit status when its gateway could not start (uvicorn's own code for it)
_POLL_SECONDS = 0.2

log = logging.getLogger("aoai_gateway")


class WorkersFailed(Exception):
    """A worker could not start; the message says which, and its log lines say why."""


def run_workers(count: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    """Run `target(*args)` in `count` processes until a stop signal; replace any that dies."""
    spawn = multiprocessing.get_context("spawn")
    signals: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}

    def start() -> BaseProcess:
        process = spawn.Process(target=target, args=args, name="aoai-gateway-worker", daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(count)]
    log.info("started %d worker processes: %s", count, " ".join(str(w.pid) for w in workers))
    failure = ""
    try:
        while not signals and not failure:
            time.sleep(_POLL_SECONDS)
            for index, worker in enumerate(workers):
                if worker.is_alive():
                    continue
                if worker.exitcode == STARTUP_FAILURE:
                    failure = f"worker process {worker.pid} could not start the gateway (see its log lines above)"
                    break
                log.warning("worker process %s ended (exit status %s); starting another", worker.pid, worker.exitcode)
                workers[index] = start()
    finally:
        started = time.monotonic()
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise WorkersFailed(failure)
    log.info("all %d worker processes stopped in %.2f s", count, time.monotonic() - started)
