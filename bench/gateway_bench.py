"""The gateway's performance benchmark: added latency, one-core throughput, CPU per request, upstream reuse.

    .venv/bin/python bench/gateway_bench.py                 # full run: 5 runs of 3 s per cell, ~10 minutes
    .venv/bin/python bench/gateway_bench.py --quick         # smoke run: 1 run of 2 s per cell, ~2 minutes
    .venv/bin/python bench/gateway_bench.py --duration 5 --runs 3
    .venv/bin/python bench/gateway_bench.py --baseline-src ../before/src --only-default   # before/after, one run
    .venv/bin/python bench/gateway_bench.py --streams 9000            # 9,000 concurrent paced streams, ~1 minute
    .venv/bin/python bench/gateway_bench.py --soak 2000000            # RSS slope over 2 million requests

Starts nginx (a near-zero-cost upstream with fixed Azure-like answers), a paced SSE upstream for the
chunk-relay probe, the bare proxy (bench/_bare_proxy.py: the gateway's server and upstream client with nothing
between them, the floor of the stack) and one gateway per candidate stack, all on loopback; drives them with wrk;
prints a markdown report and saves it, with the raw samples as JSON, under bench/results/. Each cell is measured
`--runs` times, interleaved with the direct-to-nginx baseline, the bare proxy and the other stacks, so that every
ratio compares runs taken seconds apart on this shared machine; no figure comes from anywhere but this run.
`--streams N` (bench/_streams.py) and `--soak REQUESTS` (bench/_soak.py) are separate modes. See bench/README.md
for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _gateway import (
    API_VERSION,
    MODEL,
    PACED_MODEL,
    STREAM_MODEL,
    BareProxy,
    Gateway,
    Stack,
    Upstreams,
    chat_body,
    stacks,
)
from _nginx import INSTALL_HINT, NginxUpstream, require
from _procs import LOOPBACK, ProcessGroup, free_port, raise_open_files, wait_for_port
from _report import Plan, header, machine_info, render
from _results import BARE_PROXY, BARE_RELAY, DIRECT, Probe, Results, Sample
from _soak import SoakPlan, SoakResult, render_soak, run_soak
from _sse_probe import probe
from _streams import StreamsPlan, StreamsResult, StreamsTarget, render_streams, run_streams, upstream_argv
from _wrk import WrkResult, WrkRun, run_wrk, write_script

BENCH = Path(__file__).resolve().parent
CONNECTIONS = (1, 16, 64)
# Cells every candidate is measured in; the default stack, the bare proxy and the direct baseline get all of them.
CANDIDATE_CELLS = (("json", 1), ("json", 16), ("stream", 16))
WARMUP_S = 1
MAX_PROBE_RUNS = 3  # each idle probe is --chunks x 10 ms; three of them per target are plenty
STEADY_MARGIN_S = 0.5
PROBE_INTERVAL_MS = 10.0
GATEWAY_PATH = "/v1/chat/completions"
PACED_DIRECT_PATH = f"/openai/deployments/dep1/chat/completions?api-version={API_VERSION}"
# The bare proxy forwards /nginx/... to nginx and /paced/... to the paced upstream.
BARE_PACED_PATH = f"/paced{PACED_DIRECT_PATH}"
# Streams wrk keeps open through the gateway for the loaded probe: 64 x one chunk per 10 ms = 6,400 chunks/s.
PACED_LOAD_CONNECTIONS = 64


@dataclass(frozen=True)
class Cores:
    gateway: int
    load: int  # wrk, nginx, the paced upstream and this script


def _cores() -> Cores:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        print("warning: one CPU only; the gateway shares it with wrk and nginx", file=sys.stderr)
        return Cores(available[0], available[0])
    return Cores(gateway=available[1], load=available[0])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Bench:
    """One benchmark run: its upstreams, its gateways, the bare proxy, and the samples they give.

    bench = Bench(args, procs, workdir, default, candidates)
    bench.start(); bench.load_runs(); asyncio.run(bench.relay_probes())
    """

    def __init__(
        self, args: argparse.Namespace, procs: ProcessGroup, workdir: Path, default: Stack, candidates: list[Stack]
    ) -> None:
        self.args = args
        self.procs = procs
        self.workdir = workdir
        self.cores = _cores()
        self.results = Results()
        self.default = default
        self.candidates = candidates
        self.served: dict[str, Gateway | BareProxy] = {}
        self.probe_runs = min(args.runs, MAX_PROBE_RUNS)
        self.nginx = NginxUpstream.write(workdir, free_port())
        self.paced_port = free_port()
        self.bare_relay_port = free_port()
        direct = {
            mode: f"/{'stream' if mode == 'stream' else 'prefix'}/openai/deployments/dep1/chat/completions"
            f"?api-version={API_VERSION}"
            for mode in ("json", "stream")
        }
        paths = {"gateway": dict.fromkeys(direct, GATEWAY_PATH), "direct": direct}
        paths["bare"] = {mode: f"/nginx{path}" for mode, path in direct.items()}
        self.scripts = {
            (kind, mode): write_script(
                workdir / f"{kind}-{mode}.lua",
                paths[kind][mode],
                chat_body(STREAM_MODEL if mode == "stream" else MODEL, stream=mode == "stream"),
            )
            for kind in paths
            for mode in ("json", "stream")
        }
        self.scripts[("gateway", "paced")] = write_script(
            workdir / "gateway-paced.lua", GATEWAY_PATH, chat_body(PACED_MODEL, stream=True)
        )

    def start(self) -> None:
        os.sched_setaffinity(0, {self.cores.load})
        nginx = self.procs.start(self.nginx.argv(), core=self.cores.load)
        wait_for_port(self.nginx.port, nginx)
        paced = self.procs.start(
            [
                sys.executable,
                str(BENCH / "_sse_probe.py"),
                "--port",
                str(self.paced_port),
                "--chunks",
                str(self.args.chunks),
                "--interval-ms",
                str(PROBE_INTERVAL_MS),
            ],
            core=self.cores.load,
        )
        wait_for_port(self.paced_port, paced)
        # The floor for any hop through the gateway's core: a bare byte relay there, no HTTP at all.
        bare = self.procs.start(
            [
                sys.executable,
                str(BENCH / "_sse_probe.py"),
                "--port",
                str(self.bare_relay_port),
                "--relay-to",
                str(self.paced_port),
            ],
            core=self.cores.gateway,
        )
        wait_for_port(self.bare_relay_port, bare)
        base = f"http://{LOOPBACK}:{self.nginx.port}"
        paced_base = f"http://{LOOPBACK}:{self.paced_port}"
        # The floor of the HTTP stack: the gateway's server and its default client, nothing in between.
        proxy = BareProxy.start(
            self.procs, self.default.client, {"nginx": base, "paced": paced_base}, core=self.cores.gateway
        )
        self.served[BARE_PROXY] = proxy
        _say(f"started {BARE_PROXY} (uvicorn+{proxy.client}) on port {proxy.port}")
        upstreams = Upstreams(f"{base}/prefix", f"{base}/stream", paced_base)
        for stack in (self.default, *self.candidates):
            self.served[stack.name] = Gateway.start(self.procs, self.workdir, stack, upstreams, core=self.cores.gateway)
            _say(f"started {stack.name} on port {self.served[stack.name].port}")

    def _wrk(self, port: int, target: str, mode: str, connections: int, duration: float) -> WrkResult:
        return run_wrk(
            port, self.scripts[(target, mode)], connections=connections, duration=duration, core=self.cores.load
        )

    def measure_direct(self, mode: str, connections: int, rep: int) -> None:
        result = self._wrk(self.nginx.port, "direct", mode, connections, self.args.duration)
        self.results.add(Sample(DIRECT, mode, connections, rep, result))
        _say(f"  {DIRECT:<34} {mode:<6} c{connections:<3} {result.rps:9,.0f} req/s  p50 {result.p50_ms:.3f} ms")

    def measure_served(self, gateway: Gateway | BareProxy, mode: str, connections: int, rep: int) -> None:
        kind = "bare" if isinstance(gateway, BareProxy) else "gateway"
        self._wrk(gateway.port, kind, mode, connections, WARMUP_S)
        cpu, duration = gateway.cpu_ns(), self.args.duration
        first = self.nginx.accepted()
        with WrkRun.start(
            gateway.port,
            self.scripts[(kind, mode)],
            connections=connections,
            duration=duration,
            core=self.cores.load,
        ) as run:
            # When wrk stops a run, the requests in flight are cancelled and the gateway rightly closes their
            # upstream connections; the next run re-opens them as its concurrency peaks, early on. The steady
            # figure is therefore counted in the second half of the run only.
            time.sleep(duration / 2)
            half = self.nginx.accepted()
            time.sleep(duration / 2 - STEADY_MARGIN_S)
            steady = self.nginx.accepted() - half - 1  # each stub_status query is a connection too
            result = run.wait()
        cpu = gateway.cpu_ns() - cpu
        whole = self.nginx.accepted() - first - 3
        sample = Sample(
            gateway.name,
            mode,
            connections,
            rep,
            result,
            cpu_us_per_request=cpu / 1000 / result.requests if result.requests else math.nan,
            new_upstream=steady,
            new_upstream_whole_run=whole,
            steady_s=duration / 2 - STEADY_MARGIN_S,
            core_share=cpu / (result.seconds * 1e9) if result.seconds else math.nan,
        )
        self.results.add(sample)
        _say(
            f"  {gateway.name:<34} {mode:<6} c{connections:<3} {result.rps:9,.0f} req/s  "
            f"p50 {result.p50_ms:.3f} ms  {sample.cpu_us_per_request:6.0f} µs/req  "
            f"new conns {whole} (steady {steady})  failed {result.failed}"
        )

    def load_runs(self) -> None:
        for rep in range(self.args.runs):
            _say(f"run {rep + 1}/{self.args.runs}")
            for mode in ("json", "stream"):
                for connections in CONNECTIONS:
                    targets: list[str] = [DIRECT, BARE_PROXY, self.default.name]
                    if (mode, connections) in CANDIDATE_CELLS:
                        targets += [stack.name for stack in self.candidates]
                    # Alternate the order between reps so drift in the machine's load favours no one.
                    for target in targets if rep % 2 == 0 else reversed(targets):
                        if target == DIRECT:
                            self.measure_direct(mode, connections, rep)
                        else:
                            self.measure_served(self.served[target], mode, connections, rep)

    async def _probe(self, name: str, port: int, path: str) -> list[float]:
        delays = await probe(port, path, chat_body(PACED_MODEL, stream=True))
        self.results.probes.setdefault(name, Probe()).delays_ms.extend(delays)
        _say(f"  probe {name:<44} {len(delays)} chunks, median {sorted(delays)[len(delays) // 2]:.3f} ms")
        return delays

    async def _idle_probe(self, name: str) -> None:
        gateway = self.served.get(name)
        if gateway is None:
            port = self.bare_relay_port if name == BARE_RELAY else self.paced_port
            await self._probe(name, port, PACED_DIRECT_PATH)
            return
        path = BARE_PACED_PATH if isinstance(gateway, BareProxy) else GATEWAY_PATH
        cpu, started = gateway.cpu_ns(), time.monotonic()
        delays = await self._probe(name, gateway.port, path)
        cpu, wall = gateway.cpu_ns() - cpu, time.monotonic() - started
        self.results.probes[name].cpu_us_per_chunk.append(cpu / 1000 / max(len(delays), 1))
        self.results.probes[name].core_share.append(cpu / 1e9 / wall)

    async def _loaded_probe(self, name: str, mode: str, connections: int) -> None:
        """The probe through the default gateway while wrk runs `mode` requests through it."""
        gateway = self.served[self.default.name]
        seconds = math.ceil(self.args.chunks * PROBE_INTERVAL_MS / 1000) + 3
        with WrkRun.start(
            gateway.port,
            self.scripts[("gateway", mode)],
            connections=connections,
            duration=seconds,
            core=self.cores.load,
        ):
            await asyncio.sleep(1.0)
            cpu, started = gateway.cpu_ns(), time.monotonic()
            delays = await self._probe(name, gateway.port, GATEWAY_PATH)
            cpu, wall = gateway.cpu_ns() - cpu, time.monotonic() - started
        result = self.results.probes[name]
        result.core_share.append(cpu / 1e9 / wall)
        if mode == "paced":  # each of wrk's streams carries one chunk per interval, as the probe's does
            chunks = connections * wall / (PROBE_INTERVAL_MS / 1000) + len(delays)
            result.cpu_us_per_chunk.append(cpu / 1000 / chunks)

    async def relay_probes(self) -> None:
        names = [DIRECT, BARE_RELAY, *self.served]
        for rep in range(self.probe_runs):
            for name in names if rep % 2 == 0 else reversed(names):
                await self._idle_probe(name)
        rate = PACED_LOAD_CONNECTIONS * 1000 / PROBE_INTERVAL_MS
        for _ in range(self.probe_runs):
            await self._loaded_probe(f"{self.default.name}, {rate:,.0f} chunks/s", "paced", PACED_LOAD_CONNECTIONS)
        for _ in range(self.probe_runs):
            await self._loaded_probe(f"{self.default.name} saturated", "stream", 16)

    def plan(self) -> Plan:
        baseline = next((stack.name for stack in self.candidates if stack.src), None)
        return Plan(
            default=self.default.name,
            bare=f"uvicorn+{self.default.client}",
            baseline=baseline,
            candidates=tuple(stack.name for stack in self.candidates),
            connections=CONNECTIONS,
            candidate_cells=CANDIDATE_CELLS,
            duration=self.args.duration,
            runs=self.args.runs,
            probe_runs=self.probe_runs,
            chunks=self.args.chunks,
            interval_ms=PROBE_INTERVAL_MS,
            loaded_probe=(
                f"Under load, the same probe through `{self.default.name}` while wrk keeps "
                f"{PACED_LOAD_CONNECTIONS} paced streams open through it (one chunk per "
                f"{PROBE_INTERVAL_MS:g} ms each, like real token streams; its CPU per chunk counts their "
                "chunks too), or while wrk saturates it with the nginx streaming requests at 16 connections "
                "(the probe's chunks queue behind theirs)"
            ),
        )


def _start_nginx(procs: ProcessGroup, workdir: Path, core: int) -> NginxUpstream:
    nginx = NginxUpstream.write(workdir, free_port())
    wait_for_port(nginx.port, procs.start(nginx.argv(), core=core))
    return nginx


def streams_mode(
    args: argparse.Namespace, procs: ProcessGroup, workdir: Path, default: Stack, candidates: list[Stack]
) -> tuple[list[str], dict[str, object]]:
    """N paced streams through each target in turn (each started just before its run, stopped after it): the
    upstream alone and the bare proxy with `--streams-floor`, then the default stack, then `--baseline-src`."""
    cores = _cores()
    os.sched_setaffinity(0, {cores.load})
    plan = StreamsPlan(args.streams, args.ramp, args.chunk_interval, args.stream_seconds)
    _, open_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    if 2 * plan.streams + 100 > open_files:  # a stream holds two sockets in the gateway
        _say(f"warning: {open_files:,} open files per process hold about {(open_files - 100) // 2:,} streams")
    _say(f"{plan.streams:,} streams of {plan.chunks} chunks, one per {plan.interval:g} s, {plan.ramp:,.0f} new per s")
    nginx = _start_nginx(procs, workdir, cores.load)
    upstream_port = free_port()
    wait_for_port(upstream_port, procs.start(upstream_argv(upstream_port, plan), core=cores.load))
    base, paced = f"http://{LOOPBACK}:{nginx.port}", f"http://{LOOPBACK}:{upstream_port}"
    upstreams = Upstreams(f"{base}/prefix", f"{base}/stream", paced)
    room = plan.streams + 100  # server.max_connections and upstream.max_connections
    body = chat_body(PACED_MODEL, stream=True)
    results: list[StreamsResult] = []

    def measure(target: StreamsTarget) -> None:
        _say(f"streams through {target.name}")
        result = run_streams(target, body, plan, core=cores.load)
        _say(
            f"  {target.name}: {result.completed:,} of {plan.streams:,} completed, errors {result.errors}, "
            f"headers max {result.headers_ms.max:.1f} ms, lateness p99 {result.lateness_ms.p99:.1f} ms "
            f"max {result.lateness_ms.max:.1f} ms, peak RSS {result.rss_peak_mb:.0f} MB"
        )
        results.append(result)

    if args.streams_floor:
        measure(StreamsTarget(DIRECT, upstream_port, PACED_DIRECT_PATH, None))
        proxy = BareProxy.start(procs, default.client, {"paced": paced}, core=cores.gateway, max_connections=room)
        measure(StreamsTarget(BARE_PROXY, proxy.port, BARE_PACED_PATH, proxy.pid))
        procs.stop_pid(proxy.pid)
    for stack in (default, *(stack for stack in candidates if stack.src)):
        gateway = Gateway.start(procs, workdir, stack, upstreams, core=cores.gateway, max_connections=room)
        measure(StreamsTarget(stack.name, gateway.port, GATEWAY_PATH, gateway.pid))
        procs.stop_pid(gateway.pid)
    return render_streams(results, plan), {"plan": asdict(plan), "results": [asdict(r) for r in results]}


def soak_mode(
    args: argparse.Namespace, procs: ProcessGroup, workdir: Path, default: Stack, candidates: list[Stack]
) -> tuple[list[str], dict[str, object]]:
    """`--soak` requests through the default stack, then through `--baseline-src`, one gateway at a time."""
    cores = _cores()
    os.sched_setaffinity(0, {cores.load})
    plan = SoakPlan(args.soak, args.soak_connections, args.soak_segment, args.soak_sample)
    nginx = _start_nginx(procs, workdir, cores.load)
    base = f"http://{LOOPBACK}:{nginx.port}"
    upstreams = Upstreams(f"{base}/prefix", f"{base}/stream", f"{base}/prefix")
    script = write_script(workdir / "gateway-json.lua", GATEWAY_PATH, chat_body(MODEL, stream=False))
    results: list[SoakResult] = []
    for stack in (default, *(stack for stack in candidates if stack.src)):
        gateway = Gateway.start(procs, workdir, stack, upstreams, core=cores.gateway)
        _say(f"soak: {plan.requests:,} requests through {stack.name}")
        result = run_soak(gateway, nginx, script, plan, core=cores.load)
        _say(
            f"  {stack.name}: {result.requests:,} requests, {result.rps:,.0f} req/s, RSS "
            f"{result.rss_mb('start'):.0f} -> {result.rss_mb('end'):.0f} MB, slope (2nd half) "
            f"{result.slope_second_half:.3f} B/req"
        )
        results.append(result)
        procs.stop_pid(gateway.pid)
    return render_soak(results, plan), {"plan": asdict(plan), "results": [r.as_json() for r in results]}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=3, help="seconds per measured wrk run (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="runs per cell; medians are reported (default 5)")
    parser.add_argument("--chunks", type=int, default=100, help="stamped chunks per probe (default 100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: --duration 2 --runs 1 --chunks 50")
    parser.add_argument("--output", type=Path, default=BENCH / "results", help="report folder")
    parser.add_argument(
        "--baseline-src",
        metavar="PATH",
        help="another checkout's src/ (e.g. a git worktree of an older commit): measured as a candidate beside "
        "the default stack, interleaved in the same run (in --streams and --soak: after it, the same way)",
    )
    parser.add_argument("--only-default", action="store_true", help="skip the other server/client candidates")
    streams = parser.add_argument_group("many paced streams (bench/_streams.py)")
    streams.add_argument("--streams", type=int, metavar="N", help="hold N concurrent paced streams instead")
    streams.add_argument("--ramp", type=float, default=1500.0, help="new streams per second (default 1500)")
    streams.add_argument("--chunk-interval", type=float, default=1.0, help="seconds between chunks (default 1)")
    streams.add_argument("--stream-seconds", type=float, default=30.0, help="each stream's length (default 30)")
    streams.add_argument(
        "--streams-floor",
        action="store_true",
        help="also run the N streams straight to the upstream and through the bare proxy first",
    )
    soak = parser.add_argument_group("memory over many requests (bench/_soak.py)")
    soak.add_argument("--soak", type=int, metavar="REQUESTS", help="drive this many requests and fit the RSS slope")
    soak.add_argument("--soak-connections", type=int, default=16, help="wrk connections (default 16)")
    soak.add_argument("--soak-segment", type=float, default=10.0, help="seconds per wrk run (default 10)")
    soak.add_argument("--soak-sample", type=float, default=2.0, help="seconds between RSS samples (default 2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.chunks = 2, 1, 50
    if args.duration < 1 or args.runs < 1 or args.chunks < 2:
        parser.error("--duration and --runs must be at least 1, --chunks at least 2")
    if args.streams is not None and args.soak is not None:
        parser.error("--streams and --soak are separate runs: give one")
    if args.streams is not None and (args.streams < 1 or args.ramp <= 0 or args.chunk_interval <= 0):
        parser.error("--streams, --ramp and --chunk-interval must be positive")
    if args.streams is not None and args.stream_seconds < 2 * args.chunk_interval:
        parser.error("--stream-seconds must hold at least two chunks")
    if args.soak is not None and (args.soak < 1 or args.soak_segment < 1 or args.soak_sample <= 0):
        parser.error("--soak must be positive, --soak-segment at least 1 s")
    return args


def _save(args: argparse.Namespace, kind: str, report: str, data: dict[str, object]) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    stem = args.output / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **data}, indent=1, default=str)
    )
    _say(f"saved {stem}.md and {stem}.json")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # A plain SIGTERM would skip the `finally` blocks that stop nginx, the gateways and wrk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("wrk", "nginx", "taskset"):
        if tool != "taskset":
            require(tool)
        elif shutil.which(tool) is None:
            raise SystemExit(f"taskset is missing; install it with: {INSTALL_HINT} util-linux")
    open_files = raise_open_files()  # inherited by every process started below
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = machine_info()
    default, candidates = stacks(args.only_default, args.baseline_src, _say)
    with tempfile.TemporaryDirectory(prefix="aoai-bench-") as tmp, ProcessGroup() as procs:
        if args.streams is not None or args.soak is not None:
            if args.streams is not None:
                kind, title = "gateway-streams", f"{args.streams:,} concurrent paced streams"
                lines, data = streams_mode(args, procs, Path(tmp), default, candidates)
            else:
                kind, title = "gateway-soak", f"soak over {args.soak:,} requests"
                lines, data = soak_mode(args, procs, Path(tmp), default, candidates)
            head = header(machine, started, f"aoai-gateway benchmark: {title}")
            head.append(f"- open files per process: {open_files:,} (RLIMIT_NOFILE, soft raised to hard)")
            report = "\n".join([*head, "", *lines, ""])
            print(report)
            _save(args, kind, report, {"started": started, "machine": machine, **data})
            return 0
        bench = Bench(args, procs, Path(tmp), default, candidates)
        bench.start()
        bench.load_runs()
        _say("chunk relay probes")
        asyncio.run(bench.relay_probes())
        report = render(bench.results, bench.plan(), machine, started)
    print(report)
    _save(args, "gateway-bench", report, {"started": started, "machine": machine, **bench.results.as_json()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
