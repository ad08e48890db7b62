"""Many concurrent paced streams through one gateway: header latency, chunk lateness, RSS, CPU per chunk.

    python bench/_streams.py upstream --port 9300 --interval 1 --chunks 30          # the paced SSE upstream
    python bench/_streams.py client --port 9400 --path /v1/chat/completions --body '{...}' --streams 9000 \\
        --ramp 1500 --interval 1 --chunks 30                                       # prints one JSON line
    result = run_streams(procs, target, plan, core=0)                            # from gateway_bench.py

The upstream (raw asyncio protocol on uvloop) answers each POST at once with its response head and a first SSE
event, then one event every `--interval` seconds, `--chunks` events in all, then `data: [DONE]`; every event
carries `"s":<scheduled time>,"w":<time of the write>` (time.time_ns(); the schedule is the request's arrival +
k x interval). One timer per stream, no parsing beyond the request's head and Content-Length.

The client (raw asyncio protocol on uvloop, one process) opens `--streams` connections at `--ramp` new streams
per second and POSTs a streaming chat request on each. Per stream it notes the time from the start of its connect
to its response head; per event, arrival minus the scheduled time (the lateness a user sees) and arrival minus the
write (the same without the upstream's own lateness). Its only per-read work is a regex for the stamps.

Every process raises its open-files soft limit to the hard limit: a stream holds two sockets in the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import resource
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    b"Cache-Control: no-cache\r\napim-request-id: 3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b\r\n"
    b"x-ms-region: Sweden Central\r\nx-ratelimit-remaining-requests: 9999\r\n\r\n"
)
_EVENT = (
    b'data: {"choices":[{"content_filter_results":{},"delta":{"content":" token"},"finish_reason":null,"index":0,'
    b'"logprobs":null}],"created":1732190000,"id":"chatcmpl-streams","model":"gpt-4o-2024-08-06",'
    b'"object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","s":%d,"w":%d}\n\n'
)
_DONE = b"data: [DONE]\n\n"
_END = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_DONE), _DONE)
_STAMP = re.compile(rb'"s":(\d+),"w":(\d+)}')
_TAIL = 96  # more than a stamp's length: a stamp cut between two reads is found in the next one


def _raise_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _new_loop() -> asyncio.AbstractEventLoop:
    import uvloop

    return uvloop.new_event_loop()


# The upstream ---------------------------------------------------------------------------------------------------


class _PacedAnswer(asyncio.Protocol):
    """One upstream connection: each request on it gets its paced stream (keep-alive: the next may follow)."""

    def __init__(self, interval: float, chunks: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._interval_ns = round(interval * 1e9)
        self._chunks = chunks
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sent = 0
        self._wall0 = 0
        self._loop0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._timer is None and self._sent == 0:
            self._next_request()

    def _next_request(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self._buffer) < end + 4 + length:
            return
        self._buffer = self._buffer[end + 4 + length :]
        self._wall0, self._loop0, self._sent = time.time_ns(), self._loop.time(), 0
        self._write()

    def _write(self) -> None:
        assert self._transport is not None
        event = _EVENT % (self._wall0 + self._sent * self._interval_ns, time.time_ns())
        piece = b"%x\r\n%s\r\n" % (len(event), event)
        if self._sent == 0:
            piece = _HEAD + piece
        self._sent += 1
        if self._sent < self._chunks:
            self._transport.write(piece)
            self._timer = self._loop.call_at(self._loop0 + self._sent * self._interval, self._write)
            return
        self._transport.write(piece + _END)
        self._timer, self._sent = None, 0
        self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


async def serve_upstream(port: int, interval: float, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _PacedAnswer(interval, chunks), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


# The client -----------------------------------------------------------------------------------------------------


class _Tally:
    """What every stream of the client saw: header latencies, chunk lateness, and what went wrong."""

    def __init__(self) -> None:
        self.headers_ns = array("q")
        self.late_ns = array("q")  # arrival - scheduled
        self.relay_ns = array("q")  # arrival - written
        self.start_ns = time.time_ns()
        self.worst_ns = array("q")  # per second since start: the latest chunk's lateness in it
        self.errors: Counter[str] = Counter()
        self.first_error = ""
        self.completed = 0
        self.finished = 0  # completed or failed
        self.all_finished = asyncio.Event()
        self.expected = 0

    def fail(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if not self.first_error:
            self.first_error = f"{kind}: {detail}"[:300]
        self.finish()

    def finish(self) -> None:
        self.finished += 1
        if self.finished == self.expected:
            self.all_finished.set()


class _Stream(asyncio.Protocol):
    def __init__(self, tally: _Tally, request: bytes, chunks: int, started_ns: int) -> None:
        self._tally = tally
        self._request = request
        self._chunks = chunks
        self._started_ns = started_ns
        self._head = True
        self._pending = b""
        self._seen = 0
        self._done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        tally = self._tally
        if self._head:
            data = self._pending + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._pending = data
                return
            if not data.startswith(b"HTTP/1.1 200 "):
                self._end("status", data[:200].decode("latin-1"))
                return
            tally.headers_ns.append(now - self._started_ns)
            self._head, self._pending, data = False, b"", data[end + 4 :]
        data = self._pending + data
        last = 0
        for match in _STAMP.finditer(data):
            late = now - int(match[1])
            tally.late_ns.append(late)
            tally.relay_ns.append(now - int(match[2]))
            last = match.end()
            self._seen += 1
        if last:
            second = (now - tally.start_ns) // 1_000_000_000
            worst = tally.worst_ns
            if len(worst) <= second:
                worst.extend([0] * (second + 1 - len(worst)))
            if late > worst[second]:
                worst[second] = late
        if b"[DONE]" in data:
            if self._seen == self._chunks:
                self._end("")
            else:
                self._end("missing chunks", f"{self._seen} of {self._chunks}")
            return
        self._pending = data[last:][-_TAIL:]

    def _end(self, error: str, detail: str = "") -> None:
        if self._done:
            return
        self._done = True
        if error:
            self._tally.fail(error, detail)
        else:
            self._tally.completed += 1
            self._tally.finish()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done:
            self._end("closed early", f"after {self._seen} chunks, head {'not ' if self._head else ''}received: {exc}")

    def abandon(self) -> None:
        if not self._done:
            self._end("timed out", f"{self._seen} chunks")


def _summary(values: array[int]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": math.nan, "p99": math.nan, "max": math.nan}

    def at(pct: float) -> float:
        return ordered[min(len(ordered), max(1, round(pct / 100 * len(ordered)))) - 1] / 1e6

    return {
        "count": len(ordered),
        "p50": at(50),
        "p99": at(99),
        "max": ordered[-1] / 1e6,
        "over_20ms": sum(1 for v in ordered if v > 20_000_000),
        "over_100ms": sum(1 for v in ordered if v > 100_000_000),
    }


async def run_client(
    port: int, path: str, body: str, streams: int, ramp: float, chunks: int, interval: float, grace: float
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    tally = _Tally()
    tally.expected = streams
    data = body.encode()
    request = (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\napi-key: client-key\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data)
    )
    opened: list[_Stream] = []

    async def open_one() -> None:
        stream = _Stream(tally, request, chunks, time.time_ns())
        opened.append(stream)
        try:
            await loop.create_connection(lambda: stream, "127.0.0.1", port)
        except OSError as exc:
            stream._done = True
            tally.fail("connect", repr(exc))

    started = loop.time()
    tally.start_ns = time.time_ns()
    tasks = set()
    for number in range(streams):
        delay = started + number / ramp - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(open_one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    ramp_s = loop.time() - started
    try:
        await asyncio.wait_for(tally.all_finished.wait(), timeout=chunks * interval + grace)
    except TimeoutError:
        for stream in opened:
            stream.abandon()
    return {
        "streams": streams,
        "ramp_per_s": ramp,
        "ramp_s": ramp_s,
        "wall_s": loop.time() - started,
        "completed": tally.completed,
        "errors": dict(tally.errors),
        "first_error": tally.first_error,
        "headers_ms": _summary(tally.headers_ns),
        "lateness_ms": _summary(tally.late_ns),
        "relay_ms": _summary(tally.relay_ns),
        "worst_lateness_ms_per_second": [round(v / 1e6, 1) for v in tally.worst_ns],
    }


# The orchestration, from gateway_bench.py ------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamsPlan:
    streams: int
    ramp: float  # new streams per second
    interval: float  # seconds between a stream's chunks
    seconds: float  # a stream's length

    @property
    def chunks(self) -> int:
        return max(2, round(self.seconds / self.interval))

    @property
    def steady(self) -> tuple[float, float]:
        """The window (seconds from the client's start) in which every stream is open: after the ramp (and a
        second for the last headers), before the first stream's end."""
        return self.streams / self.ramp + 1.0, self.chunks * self.interval - 1.0


@dataclass(frozen=True)
class StreamsTarget:
    name: str
    port: int
    path: str
    pid: int | None  # the process measured (RSS, CPU); None for the upstream alone


@dataclass(frozen=True)
class Spread:
    """Milliseconds: how many, p50, p99, max, and how many past 20 and 100 ms (the client's `_summary`)."""

    count: int
    p50: float
    p99: float
    max: float
    over_20ms: int = 0
    over_100ms: int = 0

    def triple(self) -> str:
        return f"{_num(self.p50)} / {_num(self.p99)} / {_num(self.max)}"


@dataclass
class StreamsResult:
    """What one target did with the plan's streams: the client's report, then the target's RSS and CPU."""

    target: str
    streams: int
    ramp_s: float
    completed: int
    errors: dict[str, int]
    first_error: str
    headers_ms: Spread
    lateness_ms: Spread
    relay_ms: Spread  # arrival - write
    worst_lateness_ms_per_second: list[float]
    rss_start_mb: float = math.nan
    rss_peak_mb: float = math.nan
    rss_end_mb: float = math.nan
    cpu_us_per_chunk_whole: float = math.nan
    cpu_us_per_chunk_steady: float = math.nan
    core_busy_steady: float = math.nan
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    @classmethod
    def from_client(cls, target: str, report: dict[str, Any]) -> StreamsResult:
        return cls(
            target=target,
            streams=report["streams"],
            ramp_s=report["ramp_s"],
            completed=report["completed"],
            errors=report["errors"],
            first_error=report["first_error"],
            headers_ms=Spread(**report["headers_ms"]),
            lateness_ms=Spread(**report["lateness_ms"]),
            relay_ms=Spread(**report["relay_ms"]),
            worst_lateness_ms_per_second=report["worst_lateness_ms_per_second"],
        )

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def upstream_argv(port: int, plan: StreamsPlan) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__)),
        "upstream",
        "--port",
        str(port),
        "--interval",
        str(plan.interval),
        "--chunks",
        str(plan.chunks),
    ]


def _client_argv(target: StreamsTarget, body: str, plan: StreamsPlan, core: int) -> list[str]:
    return [
        "taskset",
        "-c",
        str(core),
        sys.executable,
        str(Path(__file__)),
        "client",
        "--port",
        str(target.port),
        "--path",
        target.path,
        "--body",
        body,
        "--streams",
        str(plan.streams),
        "--ramp",
        str(plan.ramp),
        "--interval",
        str(plan.interval),
        "--chunks",
        str(plan.chunks),
    ]


def _client(argv: list[str], plan: StreamsPlan) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=plan.seconds * 3 + 600)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the streams client failed ({done.returncode}): {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def run_streams(target: StreamsTarget, body: str, plan: StreamsPlan, core: int) -> StreamsResult:
    """Run the client against `target` (in the foreground, pinned to `core`); sample the target's RSS and CPU."""
    from _procs import RssSampler, cpu_ns

    argv = _client_argv(target, body, plan, core)
    pid = target.pid
    if pid is None:
        return StreamsResult.from_client(target.name, _client(argv, plan))
    cpu_before = cpu_ns(pid)
    with RssSampler(pid, interval=0.5, reading=lambda: float(cpu_ns(pid))) as sampler:
        report = _client(argv, plan)
    result = StreamsResult.from_client(target.name, report)
    cpu = cpu_ns(pid) - cpu_before
    samples = sampler.samples
    result.rss_start_mb = samples[0][1] / 2**20
    result.rss_peak_mb = sampler.peak_bytes / 2**20
    result.rss_end_mb = samples[-1][1] / 2**20
    chunks = result.lateness_ms.count
    result.cpu_us_per_chunk_whole = cpu / 1000 / chunks if chunks else math.nan
    start, end = plan.steady
    window = [(t, used) for t, _, used in samples if start <= t <= end]
    if len(window) >= 2 and window[-1][0] - window[0][0] >= 1.0:
        span = window[-1][0] - window[0][0]
        used = window[-1][1] - window[0][1]
        result.cpu_us_per_chunk_steady = used / 1000 / (plan.streams * span / plan.interval)
        result.core_busy_steady = used / 1e9 / span
    result.rss_samples = [(round(t, 2), rss) for t, rss, _ in samples]
    return result


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def render_streams(results: list[StreamsResult], plan: StreamsPlan) -> list[str]:
    head = [
        "target",
        "streams",
        "completed",
        "errors",
        "headers p50 / p99 / max ms",
        "lateness p50 / p99 / max ms",
        "arrival - write p50 / p99 / max ms",
        "chunks > 20 / > 100 ms late",
        "RSS start / peak MB",
        "CPU µs/chunk steady",
        "CPU µs/chunk whole run",
        "core busy steady",
    ]
    rows = [
        [
            f"`{r.target}`",
            f"{r.streams:,}",
            f"{r.completed:,}",
            ", ".join(f"{kind} {count}" for kind, count in r.errors.items()) or "0",
            r.headers_ms.triple(),
            r.lateness_ms.triple(),
            r.relay_ms.triple(),
            f"{r.lateness_ms.over_20ms:,} / {r.lateness_ms.over_100ms:,} of {r.lateness_ms.count:,}",
            f"{_num(r.rss_start_mb, 0)} / {_num(r.rss_peak_mb, 0)}",
            _num(r.cpu_us_per_chunk_steady, 0),
            _num(r.cpu_us_per_chunk_whole, 0),
            _num(100 * r.core_busy_steady, 0) + ("%" if not math.isnan(r.core_busy_steady) else ""),
        ]
        for r in results
    ]
    rule = ["---"] + ["--:"] * (len(head) - 1)
    ramps = ", ".join(f"{r.target} {r.ramp_s:.1f} s" for r in results)
    lines = [
        f"## {plan.streams:,} concurrent paced streams ({plan.chunks} chunks each, one per {plan.interval:g} s; "
        f"opened at {plan.ramp:,.0f} per second: ramp took {ramps})",
        "",
        *("| " + " | ".join(row) + " |" for row in (head, rule, *rows)),
        "",
        "Headers: from the start of the client's connect to the response head (the gateway sends it with the "
        "upstream's first event, which the upstream writes as soon as the request arrives). Lateness: a chunk's "
        "arrival at the client minus its scheduled time (the request's arrival at the upstream + k x interval); "
        "arrival - write leaves out the upstream's own lateness. CPU per chunk, steady: the target's CPU time "
        f"while every stream was open ({plan.steady[0]:.1f}-{plan.steady[1]:.1f} s after the first connect) over "
        "the chunks due in that window; whole run: all its CPU time (stream set-up included) over the chunks "
        "received. RSS sampled from /proc every 0.5 s.",
    ]
    for r in results:
        worst = r.worst_lateness_ms_per_second
        if worst:
            top = sorted(sorted(range(len(worst)), key=lambda i: worst[i], reverse=True)[:3])
            seconds = ", ".join(f"{i}-{i + 1} s: {worst[i]:,.1f} ms" for i in top)
            lines += [
                "",
                f"`{r.target}`: the latest chunks arrived in these seconds after the first connect: {seconds}.",
            ]
        if r.first_error:
            lines += ["", f"`{r.target}`: first error: {r.first_error}"]
    for r in results:
        if r.target in ("direct", "bare proxy"):
            continue
        late, headers = r.lateness_ms, r.headers_ms
        checks = [
            (f"every stream's headers within 2 s (max {_num(headers.max / 1000, 2)} s)", headers.max <= 2000),
            (f"chunk lateness p99 under 20 ms ({_num(late.p99)} ms)", late.p99 < 20),
            (f"max under 100 ms ({_num(late.max)} ms)", late.max < 100),
            (f"RSS under 400 MB ({_num(r.rss_peak_mb, 0)} MB)", r.rss_peak_mb < 400),
            (f"no error ({r.failed})", not r.failed and r.completed == r.streams),
        ]
        verdicts = "; ".join(f"{text}: **{'met' if ok else 'missed'}**" for text, ok in checks)
        scale = "" if plan.streams >= 9000 else " (the issue sets them for 9,000 streams of 30 s)"
        lines += ["", f"Issue #18's stream targets{scale}, `{r.target}` at {plan.streams:,} streams: {verdicts}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Paced SSE upstream and many-streams client (bench/_streams.py).")
    parser.add_argument("role", choices=("upstream", "client"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a stream's chunks")
    parser.add_argument("--chunks", type=int, default=30, help="chunks per stream")
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--body", default='{"model":"gpt-4o-paced","messages":[],"stream":true}')
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=1500.0, help="new streams per second")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds past the last chunk's due time")
    args = parser.parse_args()
    _raise_open_files()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    if args.role == "upstream":
        loop.run_until_complete(serve_upstream(args.port, args.interval, args.chunks))
        return
    result = loop.run_until_complete(
        run_client(args.port, args.path, args.body, args.streams, args.ramp, args.chunks, args.interval, args.grace)
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
