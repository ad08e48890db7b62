"""The gateway under test: one `aoai-gateway serve` process per (server, upstream client) stack; and the floor.

    gateway = Gateway.start(procs, workdir, Stack("uvicorn", "httptools"), upstreams, core=1)
    bare = BareProxy.start(procs, workdir, "httptools", {"nginx": "http://127.0.0.1:9100"}, core=1)
    before = gateway.cpu_ns()
    ...
    cpu_us_per_request = (gateway.cpu_ns() - before) / 1000 / requests

Each stack gets its own config file and its own stderr file, which holds the JSON access log (one line per
request: the headline figures keep it on, as a deployment would). Which stacks exist is read from the gateway
itself at run time (`stacks()`): its default `upstream.client`, the other registered clients, granian when
installed; a stack whose extra is missing is skipped with a line saying so.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from _procs import LOOPBACK, ProcessGroup, cpu_ns, free_port, wait_for_port
from _results import BARE_PROXY

# Model names the benchmark's requests use; each maps to its own upstream path or server.
MODEL = "gpt-4o"
STREAM_MODEL = "gpt-4o-stream"
PACED_MODEL = "gpt-4o-paced"
API_VERSION = "2024-10-21"
_BENCH = Path(__file__).resolve().parent


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


def _client_missing(client: str) -> str | None:
    """Why `upstream.client: client` cannot run here (its extra is missing), or None when it can."""
    from aoai_gateway.config import UpstreamSettings
    from aoai_gateway.extras import EXTRAS, MissingExtra
    from aoai_gateway.upstream import create_upstream_client

    async def build() -> None:
        await create_upstream_client(UpstreamSettings(client=client)).aclose()

    try:
        asyncio.run(build())
    except MissingExtra as exc:  # its message names the pip command
        return str(exc)
    except Exception as exc:  # anything else is as much a reason to skip: say what broke, and the likely extra
        hint = f" (pip install 'aoai-gateway[{client}]')" if client in EXTRAS else ""
        return f"{type(exc).__name__}: {exc}{hint}"
    return None


def default_client(src: str | None = None) -> str:
    """The default `upstream.client` of this checkout, or of the one whose `src` is given."""
    if src is None:
        from aoai_gateway.config import UpstreamSettings

        return UpstreamSettings().client
    done = subprocess.run(
        [sys.executable, "-c", "from aoai_gateway.config import UpstreamSettings; print(UpstreamSettings().client)"],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def stacks(only_default: bool, baseline_src: str | None, say: Callable[[str], None]) -> tuple[Stack, list[Stack]]:
    """The default stack (uvicorn + the default client) and the candidates that can run here, in order: the
    other registered clients under uvicorn, granian + the default client, the default without its access log,
    and `baseline_src` (another checkout, with its own default client) labelled "before"."""
    from aoai_gateway.upstream import UPSTREAM_CLIENTS

    client = default_client()
    default = Stack("uvicorn", client)
    candidates: list[Stack] = []
    if not only_default:
        for other in UPSTREAM_CLIENTS:
            if other == client:
                continue
            missing = _client_missing(other)
            if missing:
                say(f"skipped uvicorn+{other}: {missing}")
            else:
                candidates.append(Stack("uvicorn", other))
        if importlib.util.find_spec("granian") is None:
            say(f"skipped granian+{client}: granian is not installed (pip install 'aoai-gateway[granian]')")
        else:
            candidates.append(Stack("granian", client))
        candidates.append(Stack("uvicorn", client, access_log=False))
    if baseline_src:
        src = str(Path(baseline_src).resolve())
        candidates.append(Stack("uvicorn", default_client(src), src=src, label="before"))
    return default, candidates


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


def _config(stack: Stack, upstreams: Upstreams, max_connections: int | None) -> dict[str, object]:
    def deployment(model: str, endpoint: str) -> dict[str, str]:
        return {
            "model": model,
            "deployment": "dep1",
            "endpoint": endpoint,
            "api_key": "upstream-key",
            "api_version": API_VERSION,
        }

    server: dict[str, object] = {"engine": stack.server, "drain_seconds": 1}
    upstream: dict[str, object] = {"client": stack.client}
    if max_connections is not None:  # many streams: room for each in the server and in the upstream pool
        server["max_connections"] = upstream["max_connections"] = max_connections
    return {
        "server": server,
        "upstream": upstream,
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

    @property
    def name(self) -> str:
        return self.stack.name

    @classmethod
    def start(
        cls,
        procs: ProcessGroup,
        workdir: Path,
        stack: Stack,
        upstreams: Upstreams,
        *,
        core: int,
        max_connections: int | None = None,
    ) -> Gateway:
        slug = "".join(c if c.isalnum() else "-" for c in stack.name)
        config = workdir / f"gateway-{slug}.yaml"
        config.write_text(yaml.safe_dump(_config(stack, upstreams, max_connections), sort_keys=False))
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
        try:
            gateway.check()
        except (OSError, RuntimeError) as exc:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{stack.name} failed its first request ({exc}); its log ends:\n{tail}") from None
        return gateway

    def check(self) -> None:
        """One real call through the gateway, so a broken configuration fails loudly before any load.

        granian listens in its main process before its worker is ready to answer: a reset connection is tried
        again for a few seconds."""
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.port}/v1/chat/completions",
            data=chat_body(MODEL, False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
                break
            except (ConnectionError, http.client.RemoteDisconnected, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if answer.get("object") != "chat.completion":
            raise RuntimeError(f"{self.stack.name}: unexpected answer {answer!r:.200}")

    def cpu_ns(self) -> int:
        return cpu_ns(self.pid)


@dataclass(frozen=True)
class BareProxy:
    """bench/_bare_proxy.py: uvicorn + the gateway's upstream client and nothing else; `/NAME/...` goes to the
    upstream named NAME (`upstreams`)."""

    client: str
    port: int
    pid: int
    name: str = BARE_PROXY

    @classmethod
    def start(
        cls,
        procs: ProcessGroup,
        client: str,
        upstreams: dict[str, str],
        *,
        core: int,
        max_connections: int = 10_000,
    ) -> BareProxy:
        port = free_port()
        argv = [sys.executable, str(_BENCH / "_bare_proxy.py"), "--port", str(port), "--client", client]
        argv += ["--max-connections", str(max_connections)]
        for name, url in upstreams.items():
            argv += ["--upstream", f"{name}={url}"]
        proc = procs.start(argv, core=core, stderr=None)
        wait_for_port(port, proc)
        return cls(client, port, proc.pid)

    def cpu_ns(self) -> int:
        return cpu_ns(self.pid)
