"""The gateway under test: one `aoai-gateway serve` process per (server, upstream client) stack.

    gateway = Gateway.start(procs, workdir, Stack("uvicorn", "aiohttp"), upstreams, core=1)
    before = gateway.cpu_ns()
    ...
    cpu_us_per_request = (gateway.cpu_ns() - before) / 1000 / requests

Each stack gets its own config file and its own stderr file, which holds the JSON access log (one line per
request: the headline figures keep it on, as a deployment would).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from _procs import LOOPBACK, ProcessGroup, cpu_ns, free_port, wait_for_port

# Model names the benchmark's requests use; each maps to its own upstream path or server.
MODEL = "gpt-4o"
STREAM_MODEL = "gpt-4o-stream"
PACED_MODEL = "gpt-4o-paced"
API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Stack:
    server: str
    client: str
    access_log: bool = True
    # Another checkout's `src` to run instead of this one (before/after comparisons), and its label.
    src: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        name = f"{self.server}+{self.client}" + ("" if self.access_log else " (no access log)")
        return f"{name} [{self.label}]" if self.label else name


@dataclass(frozen=True)
class Upstreams:
    """Base URLs (no trailing slash) of the fixed-answer nginx paths and of the paced SSE server."""

    json_endpoint: str
    stream_endpoint: str
    paced_endpoint: str


def chat_body(model: str, stream: bool) -> str:
    """The client's request, the same for the gateway and for the direct baseline."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def _config(stack: Stack, upstreams: Upstreams) -> dict[str, object]:
    def deployment(model: str, endpoint: str) -> dict[str, str]:
        return {
            "model": model,
            "deployment": "dep1",
            "endpoint": endpoint,
            "api_key": "upstream-key",
            "api_version": API_VERSION,
        }

    return {
        "server": {"engine": stack.server, "drain_seconds": 1},
        "upstream": {"client": stack.client},
        "logging": {"access_log": stack.access_log},
        "deployments": [
            deployment(MODEL, upstreams.json_endpoint),
            deployment(STREAM_MODEL, upstreams.stream_endpoint),
            deployment(PACED_MODEL, upstreams.paced_endpoint),
        ],
    }


@dataclass(frozen=True)
class Gateway:
    stack: Stack
    port: int
    pid: int
    log: Path

    @classmethod
    def start(cls, procs: ProcessGroup, workdir: Path, stack: Stack, upstreams: Upstreams, *, core: int) -> Gateway:
        slug = "".join(c if c.isalnum() else "-" for c in stack.name)
        config = workdir / f"gateway-{slug}.yaml"
        config.write_text(yaml.safe_dump(_config(stack, upstreams), sort_keys=False))
        port = free_port()
        log = workdir / f"gateway-{slug}.log"
        argv = [
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
        env = {**os.environ, "PYTHONPATH": stack.src} if stack.src else None
        with log.open("wb") as stderr:
            proc = procs.start(argv, core=core, stderr=stderr, env=env)
        wait_for_port(port, proc)
        gateway = cls(stack, port, proc.pid, log)
        gateway.check()
        return gateway

    def check(self) -> None:
        """One real call through the gateway, so a broken configuration fails loudly before any load."""
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.port}/v1/chat/completions",
            data=chat_body(MODEL, False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if answer.get("object") != "chat.completion":
            raise RuntimeError(f"{self.stack.name}: unexpected answer {answer!r:.200}")

    def cpu_ns(self) -> int:
        return cpu_ns(self.pid)
