"""What managed access costs a request: gateway keys and limit checks against passthrough, side by side.

    .venv/bin/python bench/access_bench.py [--duration 5] [--runs 3]

nginx answers a fixed chat completion (core 0, with wrk); the gateway runs on core 1 in three set-ups, each
run interleaved with the others: `passthrough` (no key checks), `keys + SQLite + memory limits` and
`keys + SQLite + Redis limits`. The key used has every cap set (rpm, tpm, per-day requests and tokens, budget),
high enough never to refuse, so each request pays for every check and the settlement of its tokens.
Reported: median p50/p99 latency at one connection, the added p50 against passthrough (target: at most 0.3 ms
with SQLite and memory limits), and req/s at 16 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _nginx import NginxUpstream
from _procs import LOOPBACK, ProcessGroup, free_port, wait_for_port
from _wrk import _LUA, _MARK, _lua_string, run_wrk

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16})
REDIS = "redis://127.0.0.1:6379/14"


def script(path: Path, secret: str) -> Path:
    text = _LUA % {"path": _lua_string("/v1/chat/completions"), "body": _lua_string(BODY), "mark": _MARK}
    path.write_text(text.replace('"client-key-not-used"', json.dumps(secret)))
    return path


async def make_key(data_dir: Path) -> str:
    from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

    db = await connect_database(f"sqlite:///{data_dir / 'gateway.db'}")
    await migrate(db)
    big = 10**12
    _, secret = await KeyStore(db).create(KeySpec("bench", ("gpt-4o",), Limits(big, big, big, big, 1000, big)))
    await db.close()
    return secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoai-access-") as tmp, ProcessGroup() as procs:
        workdir = Path(tmp)
        nginx_port = free_port()
        upstream = NginxUpstream.write(workdir, nginx_port)
        nginx = procs.start(upstream.argv(), core=0)
        wait_for_port(nginx_port, nginx)
        secret = asyncio.run(make_key(workdir / "data"))
        setups = {
            "passthrough": {"auth": "passthrough"},
            "keys + SQLite + memory limits": {"auth": "keys"},
            "keys + SQLite + Redis limits": {"auth": "keys", "redis_url": REDIS},
        }
        ports: dict[str, int] = {}
        for name, extra in setups.items():
            config = workdir / f"{len(ports)}.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        **extra,
                        "data_dir": str(workdir / "data"),
                        "deployments": [
                            {
                                "model": "gpt-4o",
                                "deployment": "dep1",
                                "api_key": "upstream-key",
                                "endpoint": f"http://{LOOPBACK}:{nginx_port}/prefix",
                            }
                        ],
                    }
                )
            )
            port = free_port()
            log = (workdir / f"{len(ports)}.log").open("wb")
            proc = procs.start(
                [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(port)],
                core=1,
                stderr=log,
            )
            wait_for_port(port, proc)
            ports[name] = port
        lua = script(workdir / "chat.lua", secret)
        single: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
        loaded: dict[str, list[float]] = {name: [] for name in setups}
        for port in ports.values():  # warm-up
            run_wrk(port, lua, connections=1, duration=1, core=0)
        for _ in range(args.runs):
            for name, port in ports.items():
                result = run_wrk(port, lua, connections=1, duration=args.duration, core=0)
                assert result.failed == 0, f"{name}: {result.failed} failed requests"
                single[name].append((result.p50_ms, result.p99_ms))
                loaded[name].append(run_wrk(port, lua, connections=16, duration=args.duration, core=0).rps)
    base = statistics.median(p50 for p50, _ in single["passthrough"])
    lines = [
        f"# Managed access overhead ({args.runs} interleaved runs of {args.duration:g} s, medians; gateway on core 1)",
        "",
        "| set-up | p50 ms (1 conn) | p99 ms (1 conn) | added p50 ms | req/s (16 conns) |",
        "| --- | --: | --: | --: | --: |",
    ]
    for name in setups:
        p50 = statistics.median(p for p, _ in single[name])
        p99 = statistics.median(p for _, p in single[name])
        added = "-" if name == "passthrough" else f"{p50 - base:+.3f}"
        lines.append(f"| {name} | {p50:.3f} | {p99:.3f} | {added} | {statistics.median(loaded[name]):,.0f} |")
    report = "\n".join(lines)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"access-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
