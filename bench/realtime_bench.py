"""Realtime sessions through the gateway: frame relay latency at N concurrent sessions, and memory per open session.

    .venv/bin/python bench/realtime_bench.py                      # 50 sessions, 200 frames each, 300 for RSS
    .venv/bin/python bench/realtime_bench.py --sessions 50 --frames 200 --rss-sessions 300

The emulator (`aoai-gateway emulator`, its own process) echoes binary messages; the gateway (`aoai-gateway serve`,
its own process, pinned to one core when there are two) relays sessions to it. In the same run, `--sessions`
clients each send `--frames` binary messages of 1,280 bytes (40 ms of 16 kHz PCM16) every 20 ms and time each echo:
once directly to the emulator, once through the gateway. A message crosses the gateway twice (to the emulator and
back), so the relay's added latency per crossing is half the round trip's difference; both are reported.

RSS per open session: `--rss-sessions` sessions opened through the gateway and held (each past its
`session.created`), the gateway process's RSS read from /proc before and after, the difference divided by the count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _procs import LOOPBACK, ProcessGroup, free_port, wait_for_port
from websockets.asyncio.client import ClientConnection, connect

KEY = "bench-key"
FRAME = 1280
INTERVAL = 0.02


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def open_session(url: str) -> ClientConnection:
    socket = await connect(url, additional_headers={"api-key": KEY}, max_size=None, compression=None)
    await socket.recv()  # session.created
    return socket


async def echo_times(url: str, frames: int, start: asyncio.Event) -> list[float]:
    socket = await open_session(url)
    times: list[float] = []
    try:
        await start.wait()
        payload = os.urandom(FRAME)
        for _ in range(frames):
            sent = time.perf_counter()
            await socket.send(payload)
            await socket.recv()
            times.append(time.perf_counter() - sent)
            await asyncio.sleep(max(0.0, INTERVAL - (time.perf_counter() - sent)))
    finally:
        await socket.close()
    return times


async def latencies(url: str, sessions: int, frames: int) -> list[float]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(echo_times(url, frames, start)) for _ in range(sessions)]
    await asyncio.sleep(0.5 + sessions * 0.01)  # every session open before the first frame
    start.set()
    return [t for times in await asyncio.gather(*tasks) for t in times]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, emulator: str, gateway: str, gateway_pid: int) -> None:
    direct_url = f"ws://{emulator}/openai/v1/realtime?model=gpt-realtime"
    relayed_url = f"ws://{gateway}/v1/realtime?model=gpt-realtime"
    await latencies(relayed_url, 2, 20)  # warm both paths
    await latencies(direct_url, 2, 20)
    rows = []
    for run in range(args.runs):
        direct = await latencies(direct_url, args.sessions, args.frames)
        relayed = await latencies(relayed_url, args.sessions, args.frames)
        d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
        g50, g99 = percentile(relayed, 0.5), percentile(relayed, 0.99)
        rows.append((d50, d99, g50, g99))
        print(
            f"run {run + 1}: {args.sessions} sessions x {args.frames} frames: echo round trip direct p50 "
            f"{d50 * 1000:.3f} ms p99 {d99 * 1000:.3f} ms; through the gateway p50 {g50 * 1000:.3f} ms p99 "
            f"{g99 * 1000:.3f} ms; added per crossing p50 {(g50 - d50) * 500:+.3f} ms p99 {(g99 - d99) * 500:+.3f} ms"
        )
    mid = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        f"median of runs: added per crossing p50 {(mid[2] - mid[0]) * 500:+.3f} ms, p99 {(mid[3] - mid[1]) * 500:+.3f} "
        f"ms (round trip +{(mid[2] - mid[0]) * 1000:.3f} / +{(mid[3] - mid[1]) * 1000:.3f} ms)"
    )

    held = [await open_session(relayed_url)]  # one open, so first-session costs are not counted per session
    await asyncio.sleep(1)
    before = rss_bytes(gateway_pid)
    for _ in range(args.rss_sessions):
        held.append(await open_session(relayed_url))
    await asyncio.sleep(1)
    after = rss_bytes(gateway_pid)
    print(
        f"RSS: {before / 2**20:.1f} MiB with 1 session, {after / 2**20:.1f} MiB with {args.rss_sessions + 1}: "
        f"{(after - before) / args.rss_sessions / 1024:.1f} KiB per open session"
    )
    await asyncio.gather(*(socket.close() for socket in held))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-sessions", type=int, default=300)
    args = parser.parse_args()
    two_cores = (os.cpu_count() or 1) >= 2
    with tempfile.TemporaryDirectory() as workdir, ProcessGroup() as procs:
        emulator_port, gateway_port = free_port(), free_port()
        python = sys.executable
        emu_config = Path(workdir) / "emulator.yaml"
        emu_config.write_text(yaml.safe_dump({"api_keys": [KEY]}))
        emulator = procs.start(
            [python, "-m", "aoai_gateway", "emulator", "--port", str(emulator_port), "--config", str(emu_config)],
            core=0 if two_cores else None,
        )
        wait_for_port(emulator_port, emulator)
        config = Path(workdir) / "gateway.yaml"
        deployment = {
            "model": "gpt-realtime",
            "endpoint": f"http://{LOOPBACK}:{emulator_port}",
            "api_key": KEY,
        }
        config.write_text(yaml.safe_dump({"logging": {"access_log": True}, "deployments": [deployment]}))
        gateway = procs.start(
            [python, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(gateway_port)],
            core=1 if two_cores else None,
        )
        wait_for_port(gateway_port, gateway)
        print(
            f"{os.cpu_count()} CPUs; emulator on core 0, gateway on core 1; the clients unpinned" if two_cores else ""
        )
        asyncio.run(measure(args, f"{LOOPBACK}:{emulator_port}", f"{LOOPBACK}:{gateway_port}", gateway.pid))


if __name__ == "__main__":
    main()
