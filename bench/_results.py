"""What one benchmark run measured, and the medians and paired differences the report is built from.

results = Results()
results.add(Sample("uvicorn+aiohttp", "json", 16, rep=0, wrk=..., cpu_us_per_request=210.0))
results.median("uvicorn+aiohttp", "json", 16, "rps")
results.added_latency("uvicorn+aiohttp", "json", 1, "p50_ms")   # paired with the direct run of each rep
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from _wrk import WrkResult

DIRECT = "direct"
BARE_RELAY = "bare relay"  # the chunk-relay probe through a plain TCP forwarder on the gateway's core
BARE_PROXY = "bare proxy"  # bench/_bare_proxy.py: the gateway's server and upstream client, nothing else


@dataclass(frozen=True)
class Sample:
    """One wrk run against one target (`DIRECT` or a stack name) in one mode and concurrency."""

    target: str
    mode: str  # "json" or "stream"
    connections: int
    rep: int
    wrk: WrkResult
    cpu_us_per_request: float | None = None
    new_upstream: int | None = None  # connections nginx accepted in the steady window (second half)
    new_upstream_whole_run: int | None = None
    steady_s: float | None = None  # the steady window's length
    core_share: float | None = None  # the gateway's CPU time / wall time: how much of its core it got

    def value(self, metric: str) -> float:
        """`rps`, `cpu_us`, `per_cpu_second`, `new_upstream` (steady), `new_whole_run`, `new_per_1k` (steady),
        `core_share`, or a `WrkResult` field."""
        if metric == "rps":
            return self.wrk.rps
        if metric == "new_per_1k":
            if self.new_upstream is None or not self.steady_s or not self.wrk.rps:
                return float("nan")
            return 1000 * self.new_upstream / (self.wrk.rps * self.steady_s)
        if metric == "per_cpu_second":
            return 1e6 / self.cpu_us_per_request if self.cpu_us_per_request else float("nan")
        own = {
            "cpu_us": self.cpu_us_per_request,
            "new_upstream": self.new_upstream,
            "new_whole_run": self.new_upstream_whole_run,
            "core_share": self.core_share,
        }
        if metric in own:
            found = own[metric]
            return float(found) if found is not None else float("nan")
        return float(getattr(self.wrk, metric))


@dataclass
class Probe:
    """Chunk relay delays (ms) seen through one target; the gateway's CPU per relayed chunk and core share."""

    delays_ms: list[float] = field(default_factory=list)
    cpu_us_per_chunk: list[float] = field(default_factory=list)
    core_share: list[float] = field(default_factory=list)


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile: `percentile([...], 99)`; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def cell(self, target: str, mode: str, connections: int) -> list[Sample]:
        return [s for s in self.samples if (s.target, s.mode, s.connections) == (target, mode, connections)]

    def median(self, target: str, mode: str, connections: int, metric: str) -> float:
        return median(s.value(metric) for s in self.cell(target, mode, connections))

    def highest(self, target: str, mode: str, connections: int, metric: str) -> float:
        """The largest value over reps: the best run's req/s, the worst run's new connections."""
        values = [s.value(metric) for s in self.cell(target, mode, connections)]
        return max(values) if values else float("nan")

    def failed(self, target: str, mode: str, connections: int) -> int:
        return sum(s.wrk.failed for s in self.cell(target, mode, connections))

    def _paired(
        self,
        target: str,
        reference: str,
        mode: str,
        connections: int,
        metric: str,
        combine: Callable[[float, float], float],
    ) -> float:
        ref = {s.rep: s.value(metric) for s in self.cell(reference, mode, connections)}
        pairs = [(s.value(metric), ref[s.rep]) for s in self.cell(target, mode, connections) if s.rep in ref]
        return median(combine(a, b) for a, b in pairs)

    def added_latency(self, target: str, mode: str, connections: int, metric: str = "p50_ms") -> float:
        """Median over reps of (gateway - direct) for a latency; each rep paired with its direct run."""
        return self._paired(target, DIRECT, mode, connections, metric, lambda a, b: a - b)

    def ratio_to(self, target: str, reference: str, mode: str, connections: int, metric: str = "rps") -> float:
        """Median over reps of target/reference, paired rep by rep (the two ran back to back)."""
        return self._paired(target, reference, mode, connections, metric, lambda a, b: a / b if b else float("nan"))

    def as_json(self) -> dict[str, object]:
        return {
            "samples": [asdict(s) | {"rps": s.wrk.rps} for s in self.samples],
            "probes": {name: asdict(p) for name, p in self.probes.items()},
        }
