"""Child processes for the benchmark: started in their own process group, pinned, measured, always stopped.

    with ProcessGroup() as procs:
        proc = procs.start(["nginx", "-c", conf], core=0, stderr=log_file)
        wait_for_port(port)
        before = cpu_ns(proc.pid)
        with RssSampler(proc.pid, interval=0.5) as rss:
            ...
        rss.peak_bytes

Every process started here lives in a new session, so stopping it kills its whole group (granian's workers
included); `ProcessGroup.__exit__` stops them all, even when the benchmark fails half-way.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """An unused TCP port on loopback (the kernel picks it; a race with another program is unlikely)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Return once something accepts connections on `port`; raise if `proc` died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on port {port} within {timeout:.0f}s")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # The command name may hold spaces or parentheses: the fields after the last ")" are safe.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def cpu_ns(pid: int) -> int:
    """CPU time (user + system, ns) used so far by every thread of `pid` and of its descendants.

    Read from /proc/PID/task/TID/schedstat, which counts in nanoseconds (utime/stime in /proc/PID/stat
    tick at 10 ms, too coarse for a few-second run).
    """
    return sum(own_cpu_ns(process) for process in process_tree(pid))


def own_cpu_ns(pid: int) -> int:
    """`cpu_ns` of `pid`'s own threads, without its descendants."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                total += int((task / "schedstat").read_text().split()[0])
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory (bytes) of `pid` and its descendants, from /proc/PID/status (VmRSS); 0 once all are gone."""
    total = 0
    for process in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def raise_open_files() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to its hard limit (inherited by the children it starts)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class RssSampler:
    """Samples a process tree's RSS every `interval` seconds in a thread, each beside an optional reading.

    with RssSampler(pid, interval=2.0, reading=nginx.requests) as rss:
        ...
    rss.peak_bytes, rss.samples   # [(seconds since start, rss bytes, reading)]
    """

    def __init__(self, pid: int, interval: float, reading: Callable[[], float] | None = None) -> None:
        self.pid = pid
        self.interval = interval
        self.reading = reading
        self.samples: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self, started: float) -> None:
        reading = self.reading() if self.reading is not None else 0.0
        self.samples.append((time.monotonic() - started, rss_bytes(self.pid), reading))

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            self._sample(started)
            if self._stop.wait(self.interval):
                self._sample(started)
                return

    @property
    def peak_bytes(self) -> int:
        return max((rss for _, rss, _ in self.samples), default=0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


class ProcessGroup:
    """Starts commands in new sessions pinned with `taskset`; stops every one of them on exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: list[str],
        *,
        core: int | None = None,
        stdout: IO[bytes] | int | None = subprocess.DEVNULL,
        stderr: IO[bytes] | int | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        # taskset execs the command, so the pid we get is the program's own.
        command = ["taskset", "-c", str(core), *argv] if core is not None else argv
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env, start_new_session=True
        )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `timeout` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        # The leader may be gone while workers of its group live on: kill the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_pid(self, pid: int) -> None:
        """`stop` the process this group started as `pid`."""
        for proc in list(self._procs):
            if proc.pid == pid:
                self.stop(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
