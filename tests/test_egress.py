"""Egress through an HTTP or SOCKS5 proxy (AZURE_OPENAI_HTTP_PROXY / AZURE_OPENAI_SOCKS_PROXY), reusing connections.

The proxy is pproxy, a real HTTP+SOCKS5 proxy server, run as a subprocess; it logs one line per connection.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import free_port, wait_until

pytest.importorskip("pproxy")

# pproxy picks uvloop when installed and then fails on newer uvloop versions; plain asyncio is enough here.
_RUN_PPROXY = """
import asyncio, sys
sys.modules["uvloop"] = None
asyncio.set_event_loop(asyncio.new_event_loop())
sys.argv = ["pproxy", "-l", "http+socks5://127.0.0.1:%d", "-v"]
from pproxy.server import main
main()
"""


@pytest.fixture
def egress_proxy(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    log = tmp_path / "pproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", _RUN_PPROXY % port], stdout=out, stderr=out)
    try:
        wait_until(
            lambda: b"Serving on" in log.read_bytes(),
            "pproxy",
            alive=lambda: process.poll() is None,
            output=log.read_text,
        )
        yield port, log
    finally:
        process.kill()
        process.wait(5)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_requests_go_through_the_proxy_on_reused_connections(
    egress_proxy: tuple[int, Path], start_gateway: GatewayFactory, scheme: str
) -> None:
    port, log = egress_proxy
    key = "http_proxy" if scheme == "http" else "socks_proxy"
    gateway = start_gateway(upstream={key: f"{scheme}://127.0.0.1:{port}"})
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            response = client.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                headers={"api-key": EMULATOR_KEY},
            )
            assert response.status_code == 200
    time.sleep(0.2)
    connections = [line for line in log.read_text().splitlines() if line.startswith(scheme + " ")]
    assert 1 <= len(connections) <= 2, connections  # ten requests, one (kept-alive) proxied connection


def test_dead_proxy_is_502(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(upstream={"socks_proxy": f"socks5://127.0.0.1:{free_port()}"})
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o"}, headers={"api-key": EMULATOR_KEY}, timeout=10
    )
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unreachable"
