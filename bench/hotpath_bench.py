"""Exact instructions per request in the gateway's own code, this checkout against another, in one run.

    .venv/bin/python bench/hotpath_bench.py --baseline-src ../before/src        # ~3 minutes
    .venv/bin/python bench/hotpath_bench.py --baseline-src ../before/src --stream
    .venv/bin/python bench/hotpath_bench.py --baseline-src ../before/src --served    # the server too, ~10 min

Wall-clock and CPU-time figures on a shared 2-core machine swing by 10% between identical runs, which hides a
change of a few percent. Instructions do not: valgrind's callgrind counts them, the same for the same code
whatever else the machine does. The app is driven in-process (bench/_inprocess.py: no HTTP server, no client)
against nginx, twice per checkout with different request counts; the difference divided by the extra requests is
the cost of one request, start-up and warm-up cancelling out. What this leaves out (uvicorn's protocol, wrk) is
the same for both checkouts; bench/gateway_bench.py measures the whole path with wrk. `--served` counts that path
too, but for the client: the real `aoai-gateway serve` under callgrind, driven over loopback (bench/_served.py).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _nginx import NginxUpstream, require
from _procs import ProcessGroup, free_port, wait_for_port
from _served import served_instructions

BENCH = Path(__file__).resolve().parent
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(src: Path, port: int, requests: int, stream: bool) -> int:
    """Instructions callgrind counts for one whole run of the in-process driver."""
    argv = [
        require("valgrind"),
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(BENCH / "_inprocess.py"),
        "--port",
        str(port),
        "--requests",
        str(requests),
        *(["--stream"] if stream else []),
    ]
    run = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True, check=True)
    found = _REFS.search(run.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count:\n{run.stderr[-2000:]}")
    return int(found[1].replace(",", ""))


def per_request(src: Path, port: int, small: int, large: int, stream: bool, served: Path | None) -> float:
    if served is not None:
        run = served_instructions(src, served, port, large) - served_instructions(src, served, port, small)
    else:
        run = instructions(src, port, large, stream) - instructions(src, port, small, stream)
    return run / (large - small)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baseline-src", type=Path, required=True, help="the other checkout's src/ folder")
    parser.add_argument("--small", type=int, default=320, help="requests in the short run (default 320)")
    parser.add_argument("--large", type=int, default=1920, help="requests in the long run (default 1920)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements per checkout, interleaved (default 2)")
    parser.add_argument("--stream", action="store_true", help="streamed answers instead of JSON")
    parser.add_argument("--served", action="store_true", help="the whole server under callgrind (JSON answers)")
    args = parser.parse_args()
    if args.served and args.stream:
        parser.error("--served measures JSON answers only")
    ours = BENCH.parent / "src"
    with tempfile.TemporaryDirectory(prefix="aoai-hotpath-") as tmp, ProcessGroup() as procs:
        nginx = NginxUpstream.write(Path(tmp), free_port())
        wait_for_port(nginx.port, procs.start(nginx.argv()))
        results: dict[str, list[float]] = {"this checkout": [], "baseline": []}
        for _ in range(args.repeat):
            for label, src in (("baseline", args.baseline_src.resolve()), ("this checkout", ours)):
                results[label].append(
                    per_request(
                        src, nginx.port, args.small, args.large, args.stream, Path(tmp) if args.served else None
                    )
                )
                print(f"  {label:<14} {results[label][-1]:>10,.0f} instructions per request", file=sys.stderr)
    base = min(results["baseline"])
    what = "served json" if args.served else "stream" if args.stream else "json"
    print(f"| checkout | instructions per request ({what}) | x baseline |")
    print("| --- | --: | --: |")
    for label, values in results.items():
        best = min(values)
        print(f"| {label} | {best:,.0f} (runs: {', '.join(f'{v:,.0f}' for v in values)}) | {best / base:.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
