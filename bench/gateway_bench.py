"""The gateway's performance benchmark: added latency, one-core throughput, CPU per request, upstream reuse.

    .venv/bin/python bench/gateway_bench.py                 # full run: 5 runs of 3 s per cell, ~8.5 minutes
    .venv/bin/python bench/gateway_bench.py --quick         # smoke run: 1 run of 2 s per cell, ~1.5 minutes
    .venv/bin/python bench/gateway_bench.py --duration 5 --runs 3
    .venv/bin/python bench/gateway_bench.py --baseline-src ../before/src --only-default   # before/after, one run

Starts nginx (a near-zero-cost upstream with fixed Azure-like answers), a paced SSE upstream for the
chunk-relay probe, and one gateway per candidate stack, all on loopback; drives them with wrk; prints a
markdown report and saves it, with the raw samples as JSON, under bench/results/. Each cell is measured
`--runs` times, interleaved with the direct-to-nginx baseline and the other stacks, so that ratios compare
runs taken seconds apart on this shared machine. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _gateway import API_VERSION, MODEL, PACED_MODEL, STREAM_MODEL, Gateway, Stack, Upstreams, chat_body
from _nginx import INSTALL_HINT, NginxUpstream, require
from _procs import LOOPBACK, ProcessGroup, free_port, wait_for_port
from _report import Plan, machine_info, render
from _results import BARE_RELAY, DIRECT, Probe, Results, Sample
from _sse_probe import probe
from _wrk import WrkResult, WrkRun, run_wrk, write_script

BENCH = Path(__file__).resolve().parent
DEFAULT = Stack("uvicorn", "aiohttp")
CANDIDATES = (
    Stack("granian", "aiohttp"),
    Stack("uvicorn", "httpx"),
    Stack("granian", "httpx"),
    Stack("uvicorn", "aiohttp", access_log=False),
)
CONNECTIONS = (1, 16, 64)
# Cells every candidate is measured in; the default stack and the direct baseline get all mode x connections.
CANDIDATE_CELLS = (("json", 1), ("json", 16), ("stream", 16))
WARMUP_S = 1
MAX_PROBE_RUNS = 3  # each idle probe is --chunks x 10 ms; three of them per target are plenty
STEADY_MARGIN_S = 0.5
PROBE_INTERVAL_MS = 10.0
GATEWAY_PATH = "/v1/chat/completions"
PACED_DIRECT_PATH = f"/openai/deployments/dep1/chat/completions?api-version={API_VERSION}"
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
    """One benchmark run: its upstreams, its gateways, and the samples they give.

    bench = Bench(args, procs, workdir)
    bench.start(); bench.load_runs(); asyncio.run(bench.relay_probes())
    """

    def __init__(self, args: argparse.Namespace, procs: ProcessGroup, workdir: Path) -> None:
        self.args = args
        self.procs = procs
        self.workdir = workdir
        self.cores = _cores()
        self.results = Results()
        self.gateways: dict[str, Gateway] = {}
        self.candidates: tuple[Stack, ...] = () if args.only_default else CANDIDATES
        if args.baseline_src:
            before = Stack("uvicorn", "aiohttp", src=str(Path(args.baseline_src).resolve()), label="before")
            self.candidates += (before,)
        self.probe_runs = min(args.runs, MAX_PROBE_RUNS)
        self.nginx = NginxUpstream.write(workdir, free_port())
        self.paced_port = free_port()
        self.bare_relay_port = free_port()
        self.scripts = {
            (target, mode): write_script(
                workdir / f"{target}-{mode}.lua",
                GATEWAY_PATH
                if target == "gateway"
                else f"/{'stream' if mode == 'stream' else 'prefix'}/openai/deployments/dep1/chat/completions"
                f"?api-version={API_VERSION}",
                chat_body(STREAM_MODEL if mode == "stream" else MODEL, stream=mode == "stream"),
            )
            for target in ("gateway", "direct")
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
        upstreams = Upstreams(f"{base}/prefix", f"{base}/stream", f"http://{LOOPBACK}:{self.paced_port}")
        for stack in (DEFAULT, *self.candidates):
            self.gateways[stack.name] = Gateway.start(
                self.procs, self.workdir, stack, upstreams, core=self.cores.gateway
            )
            _say(f"started {stack.name} on port {self.gateways[stack.name].port}")

    def _wrk(self, port: int, target: str, mode: str, connections: int, duration: float) -> WrkResult:
        return run_wrk(
            port, self.scripts[(target, mode)], connections=connections, duration=duration, core=self.cores.load
        )

    def measure_direct(self, mode: str, connections: int, rep: int) -> None:
        result = self._wrk(self.nginx.port, "direct", mode, connections, self.args.duration)
        self.results.add(Sample(DIRECT, mode, connections, rep, result))
        _say(f"  {DIRECT:<34} {mode:<6} c{connections:<3} {result.rps:9,.0f} req/s  p50 {result.p50_ms:.3f} ms")

    def measure_gateway(self, gateway: Gateway, mode: str, connections: int, rep: int) -> None:
        self._wrk(gateway.port, "gateway", mode, connections, WARMUP_S)
        cpu, duration = gateway.cpu_ns(), self.args.duration
        first = self.nginx.accepted()
        with WrkRun.start(
            gateway.port,
            self.scripts[("gateway", mode)],
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
            gateway.stack.name,
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
            f"  {gateway.stack.name:<34} {mode:<6} c{connections:<3} {result.rps:9,.0f} req/s  "
            f"p50 {result.p50_ms:.3f} ms  {sample.cpu_us_per_request:6.0f} µs/req  "
            f"new conns {whole} (steady {steady})  failed {result.failed}"
        )

    def load_runs(self) -> None:
        for rep in range(self.args.runs):
            _say(f"run {rep + 1}/{self.args.runs}")
            for mode in ("json", "stream"):
                for connections in CONNECTIONS:
                    targets: list[str] = [DIRECT, DEFAULT.name]
                    if (mode, connections) in CANDIDATE_CELLS:
                        targets += [stack.name for stack in self.candidates]
                    # Alternate the order between reps so drift in the machine's load favours no one.
                    for target in targets if rep % 2 == 0 else reversed(targets):
                        if target == DIRECT:
                            self.measure_direct(mode, connections, rep)
                        else:
                            self.measure_gateway(self.gateways[target], mode, connections, rep)

    async def _probe(self, name: str, port: int, path: str) -> list[float]:
        delays = await probe(port, path, chat_body(PACED_MODEL, stream=True))
        self.results.probes.setdefault(name, Probe()).delays_ms.extend(delays)
        _say(f"  probe {name:<44} {len(delays)} chunks, median {sorted(delays)[len(delays) // 2]:.3f} ms")
        return delays

    async def _idle_probe(self, name: str) -> None:
        gateway = self.gateways.get(name)
        if gateway is None:
            port = self.bare_relay_port if name == BARE_RELAY else self.paced_port
            await self._probe(name, port, PACED_DIRECT_PATH)
            return
        cpu, started = gateway.cpu_ns(), time.monotonic()
        delays = await self._probe(name, gateway.port, GATEWAY_PATH)
        cpu, wall = gateway.cpu_ns() - cpu, time.monotonic() - started
        self.results.probes[name].cpu_us_per_chunk.append(cpu / 1000 / max(len(delays), 1))
        self.results.probes[name].core_share.append(cpu / 1e9 / wall)

    async def _loaded_probe(self, name: str, mode: str, connections: int) -> None:
        """The probe through the default gateway while wrk runs `mode` requests through it."""
        gateway = self.gateways[DEFAULT.name]
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
        names = [DIRECT, BARE_RELAY, *self.gateways]
        for rep in range(self.probe_runs):
            for name in names if rep % 2 == 0 else reversed(names):
                await self._idle_probe(name)
        rate = PACED_LOAD_CONNECTIONS * 1000 / PROBE_INTERVAL_MS
        for _ in range(self.probe_runs):
            await self._loaded_probe(f"{DEFAULT.name}, {rate:,.0f} chunks/s", "paced", PACED_LOAD_CONNECTIONS)
        for _ in range(self.probe_runs):
            await self._loaded_probe(f"{DEFAULT.name} saturated", "stream", 16)

    def plan(self) -> Plan:
        return Plan(
            default=DEFAULT.name,
            candidates=tuple(stack.name for stack in self.candidates),
            connections=CONNECTIONS,
            candidate_cells=CANDIDATE_CELLS,
            duration=self.args.duration,
            runs=self.args.runs,
            probe_runs=self.probe_runs,
            chunks=self.args.chunks,
            interval_ms=PROBE_INTERVAL_MS,
            loaded_probe=(
                f"Under load, the same probe through `{DEFAULT.name}` while wrk keeps "
                f"{PACED_LOAD_CONNECTIONS} paced streams open through it (one chunk per "
                f"{PROBE_INTERVAL_MS:g} ms each, like real token streams; its CPU per chunk counts their "
                "chunks too), or while wrk saturates it with the nginx streaming requests at 16 connections "
                "(the probe's chunks queue behind theirs)"
            ),
        )


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
        "the default stack, interleaved in the same run",
    )
    parser.add_argument("--only-default", action="store_true", help="skip the other server/client candidates")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.chunks = 2, 1, 50
    if args.duration < 1 or args.runs < 1 or args.chunks < 2:
        parser.error("--duration and --runs must be at least 1, --chunks at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # A plain SIGTERM would skip the `finally` blocks that stop nginx, the gateways and wrk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("wrk", "nginx", "taskset"):
        if tool != "taskset":
            require(tool)
        elif shutil.which(tool) is None:
            raise SystemExit(f"taskset is missing; install it with: {INSTALL_HINT} util-linux")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="aoai-bench-") as tmp, ProcessGroup() as procs:
        bench = Bench(args, procs, Path(tmp))
        bench.start()
        bench.load_runs()
        _say("chunk relay probes")
        asyncio.run(bench.relay_probes())
        report = render(bench.results, bench.plan(), machine, started)
    print(report)
    args.output.mkdir(parents=True, exist_ok=True)
    stem = args.output / f"gateway-bench-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "started": started,
                "machine": machine,
                "args": {k: str(v) for k, v in vars(args).items()},
                **bench.results.as_json(),
            },
            indent=1,
        )
    )
    _say(f"saved {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
