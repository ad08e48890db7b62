"""Failover under a 429 storm: failure rate and the latency failover adds, side by side with a calm group.

    .venv/bin/python bench/failover_bench.py [--requests 1000] [--concurrency 16]

One emulator and one gateway on loopback. The gateway serves two models of four deployments each:
`calm` (all healthy) and `storm` (two of the four answer every request with 429 and a retry-after, the other
two are healthy). The same requests go to both, interleaved in one run; the difference in latency is what
failover costs. Scenarios: a hard storm (always 429, retry-after 1 s: the gateway learns to rest those
deployments) and a flapping one (429 at rate 0.5 with retry-after 50 ms: failover on most requests).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from _procs import LOOPBACK, ProcessGroup, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"
SCENARIOS = {
    "hard storm: 2 of 4 always 429, retry-after 1 s": {"kind": "429", "rate": 1.0, "retry_after_ms": 1000},
    "flapping: 2 of 4 answer 429 half the time, retry-after 50 ms": {
        "kind": "429",
        "rate": 0.5,
        "retry_after_ms": 50,
    },
}


@dataclass
class Outcome:
    latencies_ms: list[float]
    failures: int
    statuses: dict[int, int]

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(url: str, model: str, requests: int, concurrency: int) -> Outcome:
    body = {"model": model, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 16}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                try:
                    response = await client.post(f"{url}/v1/chat/completions", json=body, headers={"api-key": KEY})
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    failures = sum(count for status, count in statuses.items() if status != 200)
    return Outcome(latencies, failures, statuses)


def configs(workdir: Path, emulator_port: int, fault: dict[str, object]) -> tuple[Path, Path]:
    names = {"calm": [f"calm-{i}" for i in range(4)], "storm": [f"storm-{i}" for i in range(4)]}
    emulator = {
        "api_keys": [KEY],
        "auto_deployments": False,
        "deployments": [{"name": n, "model": "gpt-4o"} for n in names["calm"]]
        + [{"name": n, "model": "gpt-4o", "faults": [fault] if i < 2 else []} for i, n in enumerate(names["storm"])],
    }
    endpoint = f"http://{LOOPBACK}:{emulator_port}"
    gateway = {
        "logging": {"access_log": False},
        "routing": {"max_attempts": 4},
        "deployments": [
            {"model": model, "deployment": name, "endpoint": endpoint}
            for model, group in names.items()
            for name in group
        ],
    }
    emulator_path, gateway_path = workdir / "emulator.yaml", workdir / "gateway.yaml"
    emulator_path.write_text(yaml.safe_dump(emulator))
    gateway_path.write_text(yaml.safe_dump(gateway))
    return emulator_path, gateway_path


def run_scenario(name: str, fault: dict[str, object], requests: int, concurrency: int) -> list[str]:
    cli = [sys.executable, "-m", "aoai_gateway"]
    with tempfile.TemporaryDirectory(prefix="aoai-failover-") as tmp, ProcessGroup() as procs:
        workdir = Path(tmp)
        emulator_port, gateway_port = free_port(), free_port()
        emulator_cfg, gateway_cfg = configs(workdir, emulator_port, fault)
        with (workdir / "emulator.log").open("wb") as log:
            emulator = procs.start(
                [*cli, "emulator", "--port", str(emulator_port), "--config", str(emulator_cfg)], core=0, stderr=log
            )
        wait_for_port(emulator_port, emulator)
        with (workdir / "gateway.log").open("wb") as log:
            gateway = procs.start(
                [*cli, "serve", "--config", str(gateway_cfg), "--port", str(gateway_port)], core=1, stderr=log
            )
        wait_for_port(gateway_port, gateway)
        url = f"http://{LOOPBACK}:{gateway_port}"
        asyncio.run(load(url, "calm", 50, concurrency))  # warm-up: connections and code paths
        calm_runs, storm_runs = [], []
        # Interleave halves so both groups see the same machine noise.
        for _ in range(2):
            calm_runs.append(asyncio.run(load(url, "calm", requests // 2, concurrency)))
            storm_runs.append(asyncio.run(load(url, "storm", requests // 2, concurrency)))
        metrics = httpx.get(f"{url}/metrics").text
    calm = merge(calm_runs)
    storm = merge(storm_runs)
    retries = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("aoai_gateway_upstream_retries_total{") and 'model="storm"' in line
    )
    throttled = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("aoai_gateway_upstream_attempts_total{") and 'outcome="http_429"' in line
    )
    return [
        f"| {name} | calm | {len(calm.latencies_ms)} | {calm.failures} | {calm.pct(0.5):.2f} | {calm.pct(0.99):.2f} "
        f"| - | - | - |",
        f"| {name} | storm | {len(storm.latencies_ms)} | {storm.failures} | {storm.pct(0.5):.2f} | "
        f"{storm.pct(0.99):.2f} | {storm.pct(0.5) - calm.pct(0.5):+.2f} | {storm.pct(0.99) - calm.pct(0.99):+.2f} "
        f"| {int(throttled)} 429s, {int(retries)} retries |",
    ]


def merge(runs: list[Outcome]) -> Outcome:
    statuses: dict[int, int] = {}
    for run in runs:
        for status, count in run.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return Outcome([x for run in runs for x in run.latencies_ms], sum(r.failures for r in runs), statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per group and scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    lines = [
        f"# Failover under a 429 storm ({args.requests} requests per group, {args.concurrency} concurrent, "
        f"gateway on core 1, emulator on core 0)",
        "",
        "| scenario | group | requests | failed | p50 ms | p99 ms | added p50 ms | added p99 ms | upstream |",
        "| --- | --- | --: | --: | --: | --: | --: | --: | --- |",
    ]
    for name, fault in SCENARIOS.items():
        lines += run_scenario(name, fault, args.requests, args.concurrency)
    report = "\n".join(lines)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"failover-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
