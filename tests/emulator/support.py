"""Running the emulator for tests: on a real socket of 127.0.0.1, served by uvicorn in a thread.

with running(standard_settings()) as emulator:
    httpx.get(f"{emulator.base_url}/_emulator/health")
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from aoai_gateway.emulator import DeploymentSettings, EmulatorSettings, FaultSpec
from aoai_gateway.emulator.server import build_server

from ..servers import wait_until

API_KEY = "test-key"
API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class RunningEmulator:
    """An emulator listening on `base_url`, with helpers over its control API."""

    base_url: str
    settings: EmulatorSettings
    http: httpx.Client  # kept open: building a client per call costs more than the calls

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/_emulator/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def set_faults(self, deployment: str, *faults: dict[str, Any]) -> None:
        self.control("POST", "faults", json={"deployment": deployment, "faults": list(faults)})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def deployment_stats(self, deployment: str) -> dict[str, Any]:
        counts: dict[str, Any] = self.stats()["deployments"].get(deployment, {})
        return counts

    def requests_to(self, deployment: str) -> int:
        return int(self.deployment_stats(deployment).get("requests", 0))


@contextlib.contextmanager
def running(settings: EmulatorSettings) -> Iterator[RunningEmulator]:
    """Serve `settings` on a free port of 127.0.0.1 until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = build_server(settings, "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the emulator (see the captured log)", alive=thread.is_alive)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            yield RunningEmulator(base_url, settings, http)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def standard_settings() -> EmulatorSettings:
    return EmulatorSettings(
        api_keys=(API_KEY,),
        auto_deployments=False,
        seed=7,
        deployments=(
            DeploymentSettings(name="gpt-4o-deploy", model="gpt-4o"),
            DeploymentSettings(name="gpt-4o-backup", model="gpt-4o"),
            DeploymentSettings(name="scripted", model="gpt-4o", responses=("first", "second")),
            DeploymentSettings(name="slow-stream", model="gpt-4o", chunk_interval_ms=20),
            DeploymentSettings(name="slow-start", model="gpt-4o", latency_ms=100),
            DeploymentSettings(name="always-503", model="gpt-4o", faults=(FaultSpec(kind="503"),)),
            DeploymentSettings(name="embed-small", model="text-embedding-3-small"),
            DeploymentSettings(name="embed-ada", model="text-embedding-ada-002"),
            DeploymentSettings(name="whisper", model="whisper"),
            DeploymentSettings(name="tts", model="tts-1"),
            DeploymentSettings(name="dall-e-3", model="dall-e-3"),
            DeploymentSettings(name="instruct", model="gpt-35-turbo-instruct"),
        ),
    )
