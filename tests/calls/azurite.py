"""Azurite, Microsoft's Azure Storage emulator, as a real Blob endpoint on a loopback port for the session.

    with run_azurite() as connection_string:  # the well-known development account, on a free port
        BlobServiceClient.from_connection_string(connection_string)

scripts/test installs it from tools/azurite/package-lock.json. Without it the tests skip with a visible reason,
and fail instead when AOAI_GATEWAY_REQUIRE_SERVICES is set (see tests/services.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from ..servers import START_SECONDS, free_port
from ..services import REQUIRE_SERVICES

AZURITE_BLOB = Path(__file__).parents[2] / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public


def connection_string(port: int, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@contextlib.contextmanager
def run_azurite(timeout: float = START_SECONDS) -> Iterator[str]:
    if not AZURITE_BLOB.exists() or not shutil.which("node"):
        unavailable(
            f"Azurite is not installed at {AZURITE_BLOB} (or node is missing); run: npm ci --prefix tools/azurite"
        )
    port = free_port()
    # --skipApiVersionCheck: the Python SDK may speak a newer API version than this Azurite knows.
    command = [
        str(AZURITE_BLOB),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--silent",
        "--loose",
    ]
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir:  # in case it writes anything to its cwd
        process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for_port(process, port, timeout)
            yield connection_string(port)
        finally:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        exited = process.poll() is not None
        if exited or time.monotonic() > deadline:
            process.kill()
            output = process.communicate()[0].decode(errors="replace").strip() or "no output"
            why = "exited before it listened" if exited else f"was not listening within {timeout:g}s (overloaded?)"
            pytest.fail(f"Azurite ({AZURITE_BLOB}) on 127.0.0.1:{port} {why}: {output}")
        time.sleep(0.05)


def unavailable(message: str) -> NoReturn:
    if os.environ.get(REQUIRE_SERVICES):
        pytest.fail(f"{message}; {REQUIRE_SERVICES} is set, so this is a failure")
    pytest.skip(message)
