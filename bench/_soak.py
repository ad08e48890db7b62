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
from dataclasses import dataclass
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


def run_soak(gateway: Gateway, nginx: NginxUpstream, script: Path, plan: SoakPlan, core: int) -> dict[str, object]:
    log_offset = gateway.log.stat().st_size
    first = nginx.requests()
    segments: list[dict[str, float]] = []
    started = time.monotonic()
    with RssSampler(gateway.pid, interval=plan.sample_s, reading=lambda: float(nginx.requests() - first)) as rss:
        served = 0
        while served < plan.requests:
            result = run_wrk(gateway.port, script, connections=plan.connections, duration=plan.segment_s, core=core)
            served = nginx.requests() - first
            segments.append(
                {
                    "served": served,
                    "rps": result.rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "max_ms": result.max_ms,
                    "failed": result.failed,
                }
            )
    wall = time.monotonic() - started
    points = [(served_then, float(rss_then)) for _, rss_then, served_then in rss.samples]
    second_half = [(x, y) for x, y in points if x >= points[-1][0] / 2]
    gc = _gc_lines(gateway.log, log_offset)
    pauses = [p for p in (_pause_ms(entry) for entry in gc) if p is not None]
    return {
        "target": gateway.stack.name,
        "requests": points[-1][0] if points else 0,
        "wall_s": wall,
        "rps": (points[-1][0] / wall) if points and wall else math.nan,
        "failed": sum(s["failed"] for s in segments),
        "rss_start_mb": points[0][1] / 2**20,
        "rss_half_mb": second_half[0][1] / 2**20 if second_half else math.nan,
        "rss_end_mb": points[-1][1] / 2**20,
        "rss_peak_mb": rss.peak_bytes / 2**20,
        "slope_second_half": slope(second_half),
        "slope_whole": slope(points),
        "segment_p99_ms": [s["p99_ms"] for s in segments],
        "segment_max_ms": [s["max_ms"] for s in segments],
        "segments": segments,
        "gc_log_lines": len(gc),
        "gc_pauses_ms": pauses,
        "gc_examples": gc[:3],
        "rss_samples": [(round(t, 1), r, s) for t, r, s in rss.samples],
    }


def _num(value: object, digits: int = 1) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def render_soak(results: list[dict[str, object]], plan: SoakPlan) -> list[str]:
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
        p99s = sorted(r["segment_p99_ms"])  # type: ignore[type-var]
        maxes = sorted(r["segment_max_ms"])  # type: ignore[type-var]
        pauses = r["gc_pauses_ms"]
        assert isinstance(pauses, list)
        gc = (
            f"{len(pauses)}, max {max(pauses):.0f} ms"
            if pauses
            else (f"{r['gc_log_lines']} line(s), no duration" if r["gc_log_lines"] else "none logged")
        )
        rows.append(
            [
                f"`{r['target']}`",
                _num(r["requests"], 0),
                _num(r["rps"], 0),
                str(r["failed"]),
                " / ".join(_num(r[k], 0) for k in ("rss_start_mb", "rss_half_mb", "rss_end_mb", "rss_peak_mb")),
                _num(r["slope_second_half"], 3),
                _num(r["slope_whole"], 3),
                f"{_num(p99s[len(p99s) // 2], 2)} / {_num(p99s[-1], 2)}" if p99s else "-",
                f"{_num(maxes[len(maxes) // 2], 1)} / {_num(maxes[-1], 1)}" if maxes else "-",
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
        verdict = "met" if _num(r["slope_second_half"]) != "-" and abs(r["slope_second_half"]) < 1 else "missed"  # type: ignore[arg-type]
        if r["requests"] < 2_000_000:  # type: ignore[operator]
            verdict += f", but over {_num(r['requests'], 0)} requests, not 2 million"
        lines += ["", f"Issue #18's memory target, `{r['target']}`: slope under 1 byte per request: **{verdict}**."]
    return lines
