"""`aoai-gateway serve` as users run it: a real process, old-proxy env vars, health, SIGTERM draining."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import EMULATOR_KEY
from .servers import START_SECONDS, AsgiServer, child_environ, free_port, wait_for_http, wait_until


@pytest.fixture
def served(emulator_server: AsgiServer, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    port = free_port()
    env = {k: v for k, v in child_environ().items() if not k.startswith("AZURE_OPENAI_")}
    env.update(
        {
            "AZURE_OPENAI_ENDPOINT": emulator_server.url,
            "AZURE_OPENAI_MODEL_MAPPER": "gpt-4o=slow-stream, gpt-4o-mini = chat-mini",
            "AZURE_OPENAI_API_KEY": EMULATOR_KEY,
            "LISTEN": f"127.0.0.1:{port}",
        }
    )
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", "serve"], env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, "aoai-gateway serve", alive=lambda: process.poll() is None, output=log.read_text)
    yield process, log, url
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_health_and_env_configuration(served: tuple[subprocess.Popen[bytes], Path, str]) -> None:
    _, _, url = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready == {"status": "ready", "models": 2}
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )  # no client key: the server-side AZURE_OPENAI_API_KEY is used
    assert response.status_code == 200


def test_sigterm_drains_open_streams(served: tuple[subprocess.Popen[bytes], Path, str]) -> None:
    process, log, url = served
    results: list[str] = []
    first_chunk = threading.Barrier(51)

    def stream() -> None:
        text = ""
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            timeout=30,
            json={
                "model": "gpt-4o",
                "stream": True,
                "messages": [{"role": "user", "content": "one two three four five six seven eight"}],
            },
        ) as response:
            for index, chunk in enumerate(response.iter_text()):
                if index == 0:
                    first_chunk.wait(10)
                text += chunk
        results.append(text)

    threads = [threading.Thread(target=stream) for _ in range(50)]
    for thread in threads:
        thread.start()
    first_chunk.wait(10)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):  # stopped accepting, still draining
        httpx.get(f"{url}/healthz", timeout=2)
    for thread in threads:
        thread.join(30)
    assert len(results) == 50 and all(text.rstrip().endswith("data: [DONE]") for text in results)
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status says "terminated".
    assert process.wait(30) in (0, -signal.SIGTERM)
    lines = log.read_text().splitlines()
    assert EMULATOR_KEY not in "\n".join(lines)
    assert sum('"route":"/v1/chat/completions"' in line and '"status":200' in line for line in lines) == 50
    drained = [line for line in lines if '"drained: ' in line]
    assert len(drained) == 1, [line for line in lines if "access" not in line]
    # Every stream had its first chunk when SIGTERM came; on a busy machine a few may also have been sent whole
    # by then (short answers): what was in flight all finished, none was cut off.
    found = re.search(
        r"drained: (\d+) requests in flight at shutdown \(streams included\), (\d+) finished, 0 cut", drained[0]
    )
    assert found is not None and 40 <= int(found[1]) <= 50 and found[1] == found[2], drained[0]


def test_bad_env_is_a_clear_startup_error(tmp_path: Path) -> None:
    env = {
        **child_environ(),
        "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
        "AZURE_OPENAI_MODEL_MAPPER": "gpt-4o=ok,broken",
    }
    result = subprocess.run(
        [sys.executable, "-m", "aoai_gateway", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=START_SECONDS,
    )
    assert result.returncode == 1
    assert b"bad entry 'broken'" in result.stderr


def test_emulator_command_serves(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "emulator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", "emulator", "--port", str(port)], stdout=out, stderr=out
        )
    responses: list[httpx.Response] = []

    def answered() -> bool:
        try:
            responses.append(
                httpx.post(
                    f"http://127.0.0.1:{port}/openai/deployments/d/chat/completions?api-version=2024-10-21",
                    headers={"api-key": "k"},
                    json={"messages": [{"role": "user", "content": "hi"}]},
                    timeout=5,
                )
            )
            return True
        except httpx.TransportError:
            return False

    try:
        wait_until(answered, "aoai-gateway emulator", alive=lambda: process.poll() is None, output=log.read_text)
        response = responses[-1]
        assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    finally:
        process.terminate()
        process.wait(10)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    wait_for_http(f"{url}/readyz", process, log)


def test_a_taken_port_is_one_line_before_listening(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **child_environ(),
            "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
            "AZURE_OPENAI_MODEL_MAPPER": "gpt-4o=gpt-4o",
            "LISTEN": f"127.0.0.1:{port}",
        }
        result = subprocess.run(
            [sys.executable, "-m", "aoai_gateway", "serve"], env=env, cwd=tmp_path, capture_output=True, timeout=30
        )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"aoai-gateway: cannot listen on 127.0.0.1:{port}: the port is already in use (another aoai-gateway?); "
        "stop it, or choose another port with --port or LISTEN"
    ]
    assert b"listening" not in result.stdout + result.stderr


def test_with_emulator_runs_and_stops_with_serve(tmp_path: Path) -> None:
    emulator_port, port = free_port(), free_port()
    config = tmp_path / "config.yaml"
    endpoint = f"http://127.0.0.1:{emulator_port}"
    config.write_text(yaml.safe_dump({"deployments": [{"model": "gpt-4o", "endpoint": endpoint}]}))
    log = tmp_path / "gateway.log"
    command = ["serve", "--config", str(config), "--port", str(port), "--with-emulator", str(emulator_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoai_gateway", *command], stdout=out, stderr=out, env=child_environ()
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"authorization": "Bearer any-key"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["object"] == "chat.completion"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    with pytest.raises(httpx.ConnectError):  # the emulator went with the gateway
        httpx.get(f"{endpoint}/_emulator/health", timeout=2)
    assert f"emulator running at {endpoint}" in log.read_text()
