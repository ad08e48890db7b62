"""Responses streaming relay against the chat relay: added delay per event, the same gateway, the same run.

    .venv/bin/python bench/responses_relay_bench.py                            # 5 runs x 200 events per path
    .venv/bin/python bench/responses_relay_bench.py --runs 5 --chunks 200 --streams 16

One paced upstream (`_sse_probe.py`, its own process) answers a chat-completions POST with chat chunks and a
`/responses` POST with a Responses stream (typed `event:` lines, one stamped `response.output_text.delta` per
10 ms, then `response.completed` with the usage). One `aoai-gateway serve` (access log on, pinned to its own core
when there are two) has the model on that upstream. Each run measures, interleaved, `--streams` concurrent
streams of each kind directly from the upstream (the floor) and through the gateway (`/v1/chat/completions`,
`/v1/responses`). Per kind: p50 and p99 of every event's delay (all runs pooled), the gateway's addition over
the floor, its CPU time per relayed event (the whole stream's, request and usage parsing included, divided by its
events), and the ratio of the Responses addition to the chat addition (the target: not above 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from _procs import LOOPBACK, ProcessGroup, cpu_ns, free_port, wait_for_port
from _sse_probe import probe

BENCH = Path(__file__).resolve().parent
MODEL = "gpt-4o-paced"
API_VERSION = "2024-10-21"
INTERVAL_MS = 10.0
# kind -> (path on the gateway, path on the upstream, body, end of stream)
PATHS = {
    "chat": (
        "/v1/chat/completions",
        f"/openai/deployments/dep1/chat/completions?api-version={API_VERSION}",
        {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "stream": True},
        b"[DONE]",
    ),
    "responses": (
        "/v1/responses",
        "/openai/v1/responses",
        {"model": MODEL, "input": "Hello", "stream": True},
        b"response.completed",
    ),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def streams(port: int, kind: str, direct: bool, count: int) -> list[float]:
    gateway_path, upstream_path, body, end = PATHS[kind]
    path = upstream_path if direct else gateway_path
    if direct:
        body = {**body, "model": "dep1"}
    text = json.dumps(body, separators=(",", ":"))
    delays = await asyncio.gather(*(probe(port, path, text, end=end) for _ in range(count)))
    return [delay for stream in delays for delay in stream]


async def measure(args: argparse.Namespace, upstream: int, gateway: int, gateway_pid: int) -> None:
    cells = [(kind, direct) for kind in PATHS for direct in (True, False)]
    for kind, direct in cells:  # warm both paths (connections, first-call costs)
        await streams(upstream if direct else gateway, kind, direct, 1)
    pooled: dict[tuple[str, bool], list[float]] = {cell: [] for cell in cells}
    per_run: dict[str, list[tuple[float, float]]] = {kind: [] for kind in PATHS}
    cpu: dict[str, int] = dict.fromkeys(PATHS, 0)  # the gateway's CPU time (ns) while relaying each kind
    for run in range(args.runs):
        # Alternate the order, so neither kind is always measured first.
        order = cells if run % 2 == 0 else cells[2:] + cells[:2]
        seen: dict[tuple[str, bool], list[float]] = {}
        for kind, direct in order:
            before = cpu_ns(gateway_pid)
            seen[(kind, direct)] = await streams(upstream if direct else gateway, kind, direct, args.streams)
            if not direct:
                cpu[kind] += cpu_ns(gateway_pid) - before
            pooled[(kind, direct)] += seen[(kind, direct)]
        for kind in PATHS:
            floor, through = seen[(kind, True)], seen[(kind, False)]
            added = (
                percentile(through, 0.5) - percentile(floor, 0.5),
                percentile(through, 0.99) - percentile(floor, 0.99),
            )
            per_run[kind].append(added)
        line = "; ".join(f"{k} added p50 {per_run[k][-1][0]:+.3f} p99 {per_run[k][-1][1]:+.3f} ms" for k in PATHS)
        print(f"run {run + 1}: {line}", flush=True)

    print(f"\n{args.streams} stream(s) at once, {args.chunks} events each, {args.runs} runs, one event per 10 ms\n")
    print(
        "| stream | events | direct p50 / p99 ms | through the gateway p50 / p99 ms | added p50 / p99 ms "
        "| gateway CPU µs/event |"
    )
    print("| --- | --: | --: | --: | --: | --: |")
    added: dict[str, tuple[float, float]] = {}
    for kind in PATHS:
        floor, through = pooled[(kind, True)], pooled[(kind, False)]
        f50, f99, t50, t99 = (percentile(v, q) for v in (floor, through) for q in (0.5, 0.99))
        added[kind] = (t50 - f50, t99 - f99)
        print(
            f"| {kind} | {len(through)} | {f50:.3f} / {f99:.3f} | {t50:.3f} / {t99:.3f} | "
            f"{added[kind][0]:+.3f} / {added[kind][1]:+.3f} | {cpu[kind] / 1000 / len(through):.0f} |"
        )
    for index, name in enumerate(("p50", "p99")):
        chat, responses = added["chat"][index], added["responses"][index]
        ratio = f"{responses / chat:.2f}" if chat > 0 else "n/a (chat added nothing)"
        runs = [r[index] for r in per_run["responses"]], [c[index] for c in per_run["chat"]]
        print(
            f"\nadded {name}: Responses {responses:+.3f} ms, chat {chat:+.3f} ms, ratio {ratio} "
            f"(medians of runs: Responses {statistics.median(runs[0]):+.3f}, chat {statistics.median(runs[1]):+.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=200, help="events per stream")
    parser.add_argument("--streams", type=int, default=1, help="concurrent streams per measurement")
    args = parser.parse_args()
    two_cores = len(os.sched_getaffinity(0)) >= 2
    load_core, gateway_core = sorted(os.sched_getaffinity(0))[:2] if two_cores else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})  # this script (the clients) with the upstream, off the gateway's core
    with tempfile.TemporaryDirectory() as workdir, ProcessGroup() as procs:
        upstream_port, gateway_port = free_port(), free_port()
        upstream = procs.start(
            [
                sys.executable,
                str(BENCH / "_sse_probe.py"),
                "--port",
                str(upstream_port),
                "--chunks",
                str(args.chunks),
                "--interval-ms",
                str(INTERVAL_MS),
            ],
            core=load_core,
        )
        wait_for_port(upstream_port, upstream)
        deployment = {
            "model": MODEL,
            "deployment": "dep1",
            "endpoint": f"http://{LOOPBACK}:{upstream_port}",
            "api_key": "upstream-key",
            "api_version": API_VERSION,
        }
        config = Path(workdir) / "gateway.yaml"
        config.write_text(yaml.safe_dump({"logging": {"access_log": True}, "deployments": [deployment]}))
        log = (Path(workdir) / "gateway.log").open("wb")
        gateway = procs.start(
            [
                sys.executable,
                "-m",
                "aoai_gateway",
                "serve",
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(gateway_port),
            ],
            core=gateway_core,
            stderr=log,
        )
        wait_for_port(gateway_port, gateway)
        where = f"gateway on core {gateway_core}, upstream and clients on core {load_core}" if two_cores else "1 CPU"
        print(f"{os.cpu_count()} CPUs; {where}", flush=True)
        asyncio.run(measure(args, upstream_port, gateway_port, gateway.pid))
        log.close()


if __name__ == "__main__":
    main()
