"""The benchmark's markdown report: machine, versions, headline table, candidate stacks, chunk relay, targets.

text = render(results, plan, machine_info(), started="2026-01-01 12:00:00")

Every ratio in it is between two targets measured in the same run (nginx direct, the bare proxy, the stacks);
no reference figure from another run or another machine is printed.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from _results import BARE_PROXY, BARE_RELAY, DIRECT, Results, percentile

TARGET_RELAY_MS = 1.0
TARGET_NEW_PER_1K = 5.0  # in the steady half; the pool may still be re-growing to peak concurrency there
TARGET_CPU_RATIO_16 = 0.5  # issue #18: CPU per request at 16 connections, after / before

_PACKAGES = (
    "aoai-gateway",
    "uvicorn",
    "granian",
    "aiohttp",
    "httpx",
    "httpcore",
    "uvloop",
    "httptools",
    "orjson",
)


@dataclass(frozen=True)
class Plan:
    """What was run: the headline stack, the candidates, concurrencies, durations."""

    default: str
    bare: str  # what the bare proxy runs: "uvicorn+<the default client>"
    baseline: str | None  # the --baseline-src stack's name, if any
    candidates: tuple[str, ...]
    connections: tuple[int, ...]
    candidate_cells: tuple[tuple[str, int], ...]
    duration: float
    runs: int
    probe_runs: int
    chunks: int
    interval_ms: float
    loaded_probe: str  # what the load was during the loaded probe


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return f"{argv[0]}: not found"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine_info() -> dict[str, str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "cpus": f"{os.cpu_count()} CPUs (nproc), {cpu}",
        "kernel": f"{platform.system()} {platform.release()}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": sys.version.split()[0],
        "packages": ", ".join(versions),
        "commit": _first_line(["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"]),
        "nginx": _first_line(["nginx", "-v"]),
        "wrk": _first_line(["wrk", "-v"]),
    }


def _num(value: float, digits: int = 0, suffix: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}{suffix}"


def _signed(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:+.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    rule = ["---"] + ["--:"] * (len(head) - 1)
    return ["| " + " | ".join(row) + " |" for row in (head, rule, *rows)]


def _headline(results: Results, plan: Plan) -> list[str]:
    stack = plan.default
    head = [
        "mode",
        "conns",
        "direct req/s",
        "bare proxy req/s",
        "gateway req/s",
        "best run",
        "gw/direct",
        "x bare proxy",
        "gw p50 ms",
        "gw p99 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU µs/req",
        "bare proxy CPU µs/req",
        "own CPU µs/req",
        "req/s per CPU-s",
        "core busy",
        "new upstream conns: run",
        "steady",
        "steady per 1k req",
        "failed",
    ]
    rows = []
    for mode in ("json", "stream"):
        for c in plan.connections:
            cpu = results.median(stack, mode, c, "cpu_us")
            bare_cpu = results.median(BARE_PROXY, mode, c, "cpu_us")
            rows.append(
                [
                    mode,
                    str(c),
                    _num(results.median(DIRECT, mode, c, "rps")),
                    _num(results.median(BARE_PROXY, mode, c, "rps")),
                    _num(results.median(stack, mode, c, "rps")),
                    _num(results.highest(stack, mode, c, "rps")),
                    _num(results.ratio_to(stack, DIRECT, mode, c), 3, "x"),
                    _num(results.ratio_to(stack, BARE_PROXY, mode, c), 2, "x"),
                    _num(results.median(stack, mode, c, "p50_ms"), 3),
                    _num(results.median(stack, mode, c, "p99_ms"), 3),
                    _signed(results.added_latency(stack, mode, c)),
                    _signed(results.added_latency(stack, mode, c, "p99_ms")),
                    _num(cpu),
                    _num(bare_cpu),
                    _num(cpu - bare_cpu),
                    _num(results.median(stack, mode, c, "per_cpu_second")),
                    _num(100 * results.median(stack, mode, c, "core_share"), 0, "%"),
                    _num(results.highest(stack, mode, c, "new_whole_run")),
                    _num(results.highest(stack, mode, c, "new_upstream")),
                    _num(results.highest(stack, mode, c, "new_per_1k"), 2),
                    str(results.failed(stack, mode, c)),
                ]
            )
    return [
        f"## Headline: `{stack}`, access log on, gateway pinned to one core; beside it the bare proxy "
        f"(`{plan.bare}` and nothing else) on the same core",
        "",
        *_table(head, rows),
        "",
        "`x bare proxy`: the gateway's req/s over the bare proxy's, paired run by run; `own CPU µs/req`: the "
        "gateway's CPU per request minus the bare proxy's, what the gateway's own code costs on top of its "
        "server and client.",
    ]


def _candidates(results: Results, plan: Plan) -> list[str]:
    head = ["stack"]
    for mode, c in plan.candidate_cells:
        head += [f"{mode} c{c} req/s", "x default", f"{mode} c{c} CPU µs/req"]
        if c == 1:
            head.append("added p50 ms")
    head += ["chunk relay p50 / p99 ms", "failed"]
    rows = []
    for stack in (BARE_PROXY, plan.default, *plan.candidates):
        row = [f"`{stack}` (`{plan.bare}`)" if stack == BARE_PROXY else f"`{stack}`"]
        for mode, c in plan.candidate_cells:
            row += [
                _num(results.median(stack, mode, c, "rps")),
                _num(results.ratio_to(stack, plan.default, mode, c), 2, "x"),
                _num(results.median(stack, mode, c, "cpu_us")),
            ]
            if c == 1:
                row.append(_signed(results.added_latency(stack, mode, c)))
        probe = results.probes.get(stack)
        row.append(
            f"{_num(percentile(probe.delays_ms, 50), 3)} / {_num(percentile(probe.delays_ms, 99), 3)}" if probe else "-"
        )
        row.append(str(sum(results.failed(stack, mode, c) for mode, c in plan.candidate_cells)))
        rows.append(row)
    return [
        "## Candidate stacks, side by side (interleaved in one run; ratios paired run by run)",
        "",
        *_table(head, rows),
    ]


def _relay(results: Results, plan: Plan) -> list[str]:
    head = [
        "path",
        "chunks",
        "p50 ms",
        "p99 ms",
        "max ms",
        "added p50 ms",
        "added p99 ms",
        "gw CPU µs/chunk",
        "gw core busy",
    ]
    direct = results.probes.get(DIRECT)
    d50 = percentile(direct.delays_ms, 50) if direct else math.nan
    d99 = percentile(direct.delays_ms, 99) if direct else math.nan
    rows = []
    for name, probe in results.probes.items():
        delays = probe.delays_ms
        p50, p99 = percentile(delays, 50), percentile(delays, 99)
        is_direct = name == DIRECT
        label = {
            DIRECT: "direct to the upstream",
            BARE_RELAY: "through a bare TCP relay on the gateway core",
            BARE_PROXY: f"through the bare proxy (`{plan.bare}`)",
        }
        rows.append(
            [
                label.get(name, f"through `{name}`"),
                str(len(delays)),
                _num(p50, 3),
                _num(p99, 3),
                _num(max(delays, default=math.nan), 3),
                "-" if is_direct else _signed(p50 - d50),
                "-" if is_direct else _signed(p99 - d99),
                _num(percentile(probe.cpu_us_per_chunk, 50)),
                _num(100 * percentile(probe.core_share, 50), 0, "%"),
            ]
        )
    return [
        f"## Streaming chunk relay ({plan.probe_runs} x {plan.chunks} chunks per path, "
        f"{plan.interval_ms:g} ms apart; stamped at the upstream's write, timed at the client's read)",
        "",
        *_table(head, rows),
        "",
        f"Idle, the gateway's CPU per chunk is mostly the cost of waking up for each one. {plan.loaded_probe}.",
    ]


def _targets(results: Results, plan: Plan) -> list[str]:
    stack = plan.default
    cells = [(m, c) for m in ("json", "stream") for c in plan.connections]
    new = max(results.highest(stack, m, c, "new_upstream") for m, c in cells)
    per_1k = max(results.highest(stack, m, c, "new_per_1k") for m, c in cells)
    # Reuse holds when no run opened more connections than it has clients: at most a re-growth of the pool
    # after the previous run's cancelled requests, never one connection per request.
    regrowth_only = all(results.highest(stack, m, c, "new_whole_run") <= c for m, c in cells)
    worst_run = max(results.highest(stack, m, c, "new_whole_run") for m, c in cells)
    probe = results.probes.get(stack)
    relay50 = percentile(probe.delays_ms, 50) if probe else math.nan
    relay99 = percentile(probe.delays_ms, 99) if probe else math.nan

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    lines = [
        "## Targets (headline stack; each against something measured in this run)",
        "",
        f"- upstream connections reused (close to zero new ones in a steady run): at most {_num(new)} new "
        f"connection(s) in the steady half of any run ({_num(per_1k, 2)} per 1,000 requests); at most "
        f"{_num(worst_run)} in a whole run, never more than its client connections "
        f"— {verdict(regrowth_only and per_1k < TARGET_NEW_PER_1K)}",
        f"- streaming chunks relayed within {TARGET_RELAY_MS:g} ms (idle gateway): "
        f"p50 {_num(relay50, 3)} ms, p99 {_num(relay99, 3)} ms end to end — "
        f"{verdict(relay99 < TARGET_RELAY_MS)} at p99, {verdict(relay50 < TARGET_RELAY_MS)} at p50",
    ]
    before = plan.baseline
    if before is None:
        lines.append(
            "- before/after (issue #18: CPU per request at 16 connections at most 0.5x, added p50 at 1 connection "
            "no worse): not measured in this run; give `--baseline-src` the older checkout's src/"
        )
        return lines
    cpu_ratio = results.ratio_to(stack, before, "json", 16, "cpu_us")
    cpu_now = results.median(stack, "json", 16, "cpu_us")
    cpu_before = results.median(before, "json", 16, "cpu_us")
    added_now = results.added_latency(stack, "json", 1)
    added_before = results.added_latency(before, "json", 1)
    lines += [
        f"- CPU per request at 16 connections (json) at most {TARGET_CPU_RATIO_16:g}x `{before}`'s: "
        f"{_num(cpu_now)} µs against {_num(cpu_before)} µs, {_num(cpu_ratio, 2, 'x')} paired run by run "
        f"— {verdict(cpu_ratio <= TARGET_CPU_RATIO_16)}",
        f"- added p50 at 1 connection (json) no worse than `{before}`'s: {_signed(added_now)} ms against "
        f"{_signed(added_before)} ms — {verdict(added_now <= added_before)}",
    ]
    return lines


def header(machine: dict[str, str], started: str, title: str) -> list[str]:
    """The report's title and the machine it ran on, for every mode."""
    return [
        f"# {title}, {started}",
        "",
        f"- machine: {machine['cpus']}; {machine['kernel']}; load average at start {machine['load']}. Shared "
        "and noisy: compare ratios from one run, not absolute figures across runs",
        f"- gateway at commit {machine['commit']}; python {machine['python']}; {machine['packages']}",
        f"- {machine['nginx']}; {machine['wrk']}",
    ]


def render(results: Results, plan: Plan, machine: dict[str, str], started: str) -> str:
    lines = [
        *header(machine, started, "aoai-gateway benchmark"),
        f"- {plan.runs} run(s) of {plan.duration:g} s per cell, each gateway run after a 1 s warm-up at the "
        "same concurrency; medians (and the best run's req/s: noise only ever slows a run down); gateway "
        "and bare proxy on core 1 (`taskset -c 1`), wrk (`-t1`) and nginx (`worker_processes 1`) on core 0",
        "- `json`: non-streaming chat completion (nginx answers a fixed 1.2 kB Azure body); `stream`: "
        '`"stream": true`, nginx answers a fixed 14-event SSE body (3.3 kB with Content-Length, so it '
        "mostly arrives in one read)",
        f"- bare proxy: bench/_bare_proxy.py, a raw ASGI app under uvicorn (httptools, uvloop) that sends the "
        f"body with the gateway's default upstream client and relays the answer (`{plan.bare}`): the floor of "
        "the stack",
        "- `req/s per CPU-s` = 1e6 / CPU µs per request: the throughput one core would give if the gateway "
        "had it to itself; `core busy` = the gateway's CPU time / wall time (below 100% at saturation means "
        "other work took the core); `new upstream conns` = connections nginx accepted from the gateway: over "
        "the whole run (which re-opens those closed when the previous run's in-flight requests were "
        "cancelled), and in its steady second half (to 0.5 s before the end), also per 1,000 requests; "
        "worst run",
        "",
        *_headline(results, plan),
        "",
        *_candidates(results, plan),
        "",
        *_relay(results, plan),
        "",
        *_targets(results, plan),
        "",
    ]
    return "\n".join(lines)
