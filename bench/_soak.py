"""A long wrk run through one gateway: does its memory grow with the requests it serves?

    result = run_soak(gateway, nginx, script, SoakPlan(requests=2_000_000), core=0)
    lines = render_soak([result], plan)

wrk drives the gateway in back-to-back runs of `segment_s` seconds (closed loop, `connections` connections,
non-streaming chat against nginx) until nginx has answered `requests` requests from it; a thread samples the
gateway's RSS (/proc, its whole process tree) every `sample_s` seconds beside nginx's request counter. The RSS
slope in bytes per request is the least-squares fit of RSS against requests over the second half of the
requests (the first half is warm-up: pools, caches and allocator arenas fill), and over the whole run for
comparison. Each wrk run's p99 and max latency show stalls (collector passes) as they happen. Full-GC pauses
are reported only if the gateway itself logs them (a log line naming gc or garbage collection); the benchmark
does not instrument the gateway.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _gateway import Gateway
from _nginx import NginxUpstream
from _procs import RssSampler
from _wrk import run_wrk

_GC_LINE = re.compile(rb"\bgc\b|garbage|collect", re.IGNORECASE)
_ACCESS = b'"aoai_gateway.access"'


@dataclass(frozen=True)
class SoakPlan:
    requests: int
    connections: int = 16
    segment_s: float = 10.0
    sample_s: float = 2.0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; NaN with fewer than two distinct x."""
    if len(points) < 2:
        return math.nan
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return math.nan
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def _gc_lines(log: Path, offset: int) -> list[dict[str, object]]:
    """Log lines past `offset` that speak of garbage collection (the access log's lines skipped)."""
    found: list[dict[str, object]] = []
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if _ACCESS in line or not _GC_LINE.search(line):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"message": line.decode("utf-8", "replace").strip()}
            found.append(entry if isinstance(entry, dict) else {"message": entry})
    return found


def _pause_ms(entry: dict[str, object]) -> float | None:
    for key, value in entry.items():
        if isinstance(value, (int, float)) and ("ms" in key or "pause" in key or "duration" in key):
            return float(value) * (1000 if key.endswith("_s") or key.endswith("seconds") else 1)
    return None


@dataclass(frozen=True)
class Segment:
    """One wrk run of the soak, and the requests nginx had answered when it ended."""

    served: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failed: int


@dataclass
class SoakResult:
    target: str
    requests: int
    wall_s: float
    segments: list[Segment]
    rss_samples: list[tuple[float, int, int]]  # seconds, RSS bytes, requests served
    gc_lines: list[dict[str, object]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else math.nan

    @property
    def failed(self) -> int:
        return sum(segment.failed for segment in self.segments)

    def _points(self, second_half: bool) -> list[tuple[float, float]]:
        points = [(float(served), float(rss)) for _, rss, served in self.rss_samples]
        return [(x, y) for x, y in points if x >= self.requests / 2] if second_half else points

    @property
    def slope_second_half(self) -> float:
        return slope(self._points(second_half=True))

    @property
    def slope_whole(self) -> float:
        return slope(self._points(second_half=False))

    def rss_mb(self, at: str) -> float:
        """RSS at `start`, `half` (the first sample of the second half), `end` or `peak`, in MiB."""
        points = self._points(second_half=at == "half")
        if not points:
            return math.nan
        picked = {"start": points[0][1], "half": points[0][1], "end": points[-1][1], "peak": max(y for _, y in points)}
        return picked[at] / 2**20

    @property
    def gc_pauses_ms(self) -> list[float]:
        return [pause for pause in map(_pause_ms, self.gc_lines) if pause is not None]

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {
            "rps": self.rps,
            "failed": self.failed,
            "slope_second_half": self.slope_second_half,
            "slope_whole": self.slope_whole,
            "gc_pauses_ms": self.gc_pauses_ms,
        }


def run_soak(gateway: Gateway, nginx: NginxUpstream, script: Path, plan: SoakPlan, core: int) -> SoakResult:
    log_offset = gateway.log.stat().st_size
    first = nginx.requests()
    segments: list[Segment] = []
    started = time.monotonic()
    with RssSampler(gateway.pid, interval=plan.sample_s, reading=lambda: float(nginx.requests() - first)) as rss:
        served = 0
        while served < plan.requests:
            result = run_wrk(gateway.port, script, connections=plan.connections, duration=plan.segment_s, core=core)
            served = nginx.requests() - first
            segments.append(Segment(served, result.rps, result.p50_ms, result.p99_ms, result.max_ms, result.failed))
    return SoakResult(
        target=gateway.name,
        requests=served,
        wall_s=time.monotonic() - started,
        segments=segments,
        rss_samples=[(round(t, 1), size, int(count)) for t, size, count in rss.samples],
        gc_lines=_gc_lines(gateway.log, log_offset),
    )


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _median_worst(values: list[float], digits: int) -> str:
    ordered = sorted(values)
    return f"{_num(ordered[len(ordered) // 2], digits)} / {_num(ordered[-1], digits)}" if ordered else "-"


def render_soak(results: list[SoakResult], plan: SoakPlan) -> list[str]:
    head = [
        "target",
        "requests",
        "req/s",
        "failed",
        "RSS start / half / end / peak MB",
        "slope 2nd half B/req",
        "slope whole B/req",
        "wrk run p99 ms: median / worst",
        "wrk run max ms: median / worst",
        "full-GC pauses logged",
    ]
    rows = []
    for r in results:
        pauses = r.gc_pauses_ms
        if pauses:
            gc = f"{len(pauses)}, max {max(pauses):.0f} ms"
        else:
            gc = f"{len(r.gc_lines)} line(s), no duration" if r.gc_lines else "none logged"
        rows.append(
            [
                f"`{r.target}`",
                f"{r.requests:,}",
                _num(r.rps, 0),
                str(r.failed),
                " / ".join(_num(r.rss_mb(at), 0) for at in ("start", "half", "end", "peak")),
                _num(r.slope_second_half, 3),
                _num(r.slope_whole, 3),
                _median_worst([s.p99_ms for s in r.segments], 2),
                _median_worst([s.max_ms for s in r.segments], 1),
                gc,
            ]
        )
    rule = ["---"] + ["--:"] * (len(head) - 1)
    lines = [
        f"## Soak: {plan.requests:,} non-streaming requests at {plan.connections} connections "
        f"(wrk runs of {plan.segment_s:g} s back to back; RSS sampled every {plan.sample_s:g} s)",
        "",
        *("| " + " | ".join(row) + " |" for row in (head, rule, *rows)),
        "",
        "Slope: least squares of the gateway's RSS against the requests nginx answered, over the samples taken "
        "after half the requests (warm-up excluded), and over all of them. RSS moves in allocator-sized steps, "
        "so a short run's slope is noisy; the issue's target is under 1 byte per request over 2 million. "
        "Full-GC pauses: counted only from the gateway's own log lines about garbage collection (the benchmark "
        "does not instrument the gateway); a spike in a wrk run's max latency is the other sign of one.",
    ]
    for r in results:
        verdict = "met" if abs(r.slope_second_half) < 1 else "missed"  # NaN (too few samples): missed
        if r.requests < 2_000_000:
            verdict += f", but over {r.requests:,} requests, not 2 million"
        lines += ["", f"Issue #18's memory target, `{r.target}`: slope under 1 byte per request: **{verdict}**."]
    return lines
