"""The whole served path under callgrind: `aoai-gateway serve` (uvicorn, the gateway's protocol, the app, the
upstream client) answering N chat requests from a client outside valgrind, 16 keep-alive connections at a time.

    instructions = served_instructions(src, workdir, nginx_port, requests=1920)

`hotpath_bench.py --served` takes the difference of two such runs (different N) over the extra requests: start-up
and shut-down cancel out, what remains is one request's cost in the server and the gateway, exactly. The client
writes each request whole and reads each answer by its Content-Length (nginx's fixed answers carry one).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _gateway import MODEL, Stack, Upstreams, _config, chat_body, default_client
from _nginx import require
from _procs import LOOPBACK, free_port

CONNECTIONS = 16
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_START_SECONDS = 600.0  # imports under valgrind are slow; a busy machine slower still


def served_instructions(src: Path, workdir: Path, nginx_port: int, requests: int) -> int:
    """Instructions callgrind counts for one serve process's whole life, `requests` answered in it."""
    base = f"http://{LOOPBACK}:{nginx_port}"
    stack = Stack("uvicorn", default_client(str(src)), src=str(src))
    config = workdir / f"served-{abs(hash(str(src)))}.yaml"
    upstreams = Upstreams(f"{base}/prefix", f"{base}/stream", base)
    config.write_text(yaml.safe_dump(_config(stack, upstreams, None), sort_keys=False))
    port = free_port()
    log = workdir / f"callgrind-{port}.log"
    argv = [require("valgrind"), "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}"]
    argv += [
        sys.executable,
        "-m",
        "aoai_gateway",
        "serve",
        "--config",
        str(config),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(_drive(port, proc, requests))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=_START_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    found = _REFS.search(log.read_text())
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count:\n{log.read_text()[-2000:]}")
    return int(found[1].replace(",", ""))


async def _drive(port: int, proc: subprocess.Popen[bytes], requests: int) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while True:
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway under callgrind did not start") from None
            await asyncio.sleep(0.5)
    body = chat_body(MODEL, stream=False).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    remaining = [requests]
    await asyncio.gather(*(_connection(port, request, remaining) for _ in range(CONNECTIONS)))


async def _connection(port: int, request: bytes, remaining: list[int]) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        while remaining[0] > 0:
            remaining[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the gateway answered {head[:40]!r}")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length is None:
                raise RuntimeError("an answer without Content-Length")
            await reader.readexactly(int(length[1]))
    finally:
        writer.close()
