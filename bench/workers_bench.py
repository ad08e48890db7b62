"""`server.workers: 2` against 1 on this machine's two cores: requests per second, interleaved in one run.

    .venv/bin/python bench/workers_bench.py                  # 5 runs of 5 s per setting, ~1.5 minutes
    .venv/bin/python bench/workers_bench.py --runs 3 --connections 64

nginx answers a fixed Azure body; `aoai-gateway serve` runs once with one worker process and once with two
(the same port shared, bench/README.md), neither pinned; wrk (one thread) drives each in turn at the same
concurrency. On a 2-core machine the load generator and nginx take a share of the same two cores, so the ratio is
what a second worker buys on a box this small, not the ceiling of two processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from _gateway import API_VERSION, MODEL, chat_body
from _nginx import NginxUpstream
from _procs import LOOPBACK, ProcessGroup, free_port, wait_for_port
from _wrk import run_wrk, write_script


def _serve(procs: ProcessGroup, workdir: Path, upstream: str, workers: int) -> int:
    config = workdir / f"workers-{workers}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"workers": workers, "drain_seconds": 1},
                "deployments": [
                    {
                        "model": MODEL,
                        "deployment": "dep1",
                        "endpoint": upstream,
                        "api_key": "upstream-key",
                        "api_version": API_VERSION,
                    }
                ],
            }
        )
    )
    port = free_port()
    argv = [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--host", LOOPBACK]
    proc = procs.start([*argv, "--port", str(port)], stderr=(workdir / f"workers-{workers}.log").open("wb"))
    wait_for_port(port, proc, timeout=120)
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoai-workers-") as tmp, ProcessGroup() as procs:
        workdir = Path(tmp)
        nginx = NginxUpstream.write(workdir, free_port())
        wait_for_port(nginx.port, procs.start(nginx.argv()))
        upstream = f"http://{LOOPBACK}:{nginx.port}/prefix"
        ports = {workers: _serve(procs, workdir, upstream, workers) for workers in (1, 2)}
        script = write_script(workdir / "chat.lua", "/v1/chat/completions", chat_body(MODEL, False))
        rates: dict[int, list[float]] = {1: [], 2: []}
        for run in range(args.runs):
            for workers, port in ports.items():
                run_wrk(port, script, connections=args.connections, duration=1, core=0)  # warm-up
                result = run_wrk(port, script, connections=args.connections, duration=args.duration, core=0)
                if result.errors or result.non2xx:
                    raise SystemExit(f"workers={workers}: {result.errors} errors, {result.non2xx} non-2xx")
                rates[workers].append(result.rps)
                print(f"  run {run + 1}: workers={workers} {result.rps:8,.0f} req/s", file=sys.stderr)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"| server.workers | req/s at {args.connections} connections (median of {args.runs}) | x one worker |")
    print("| --: | --: | --: |")
    print(f"| 1 | {one:,.0f} (runs {', '.join(f'{r:,.0f}' for r in rates[1])}) | 1.00x |")
    print(f"| 2 | {two:,.0f} (runs {', '.join(f'{r:,.0f}' for r in rates[2])}) | {two / one:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
