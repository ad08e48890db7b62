"""Attack: make the gateway read (and spool) a large body before it has checked the key.

In keys mode the key is checked from the headers alone: a caller without a valid key gets its 401 while most of
its declared body is still unsent, and nothing is written to a temporary file.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory

DECLARED = 300 * 1024 * 1024  # what the headers promise; only a few KiB are ever sent


def spooled_files() -> int:
    """Open temporary files of this process (the gateway under test runs in it): spooled bodies are unlinked."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.endswith("(deleted)")
    return count


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/audio/transcriptions", "multipart/form-data; boundary=x"),
        ("/v1/chat/completions", "application/json"),
        ("/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21", "multipart/form-data; boundary=x"),
        ("/openai/v1/chat/completions", "application/json"),
    ],
)
@pytest.mark.parametrize("key", [None, "sk-gw-wrong"])
def test_no_key_no_body_read(
    path: str, content_type: str, key: str | None, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    deployments = [
        {"model": "whisper-1", "deployment": "whisper", "endpoint": "http://127.0.0.1:9", "api_key": EMULATOR_KEY},
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": "http://127.0.0.1:9", "api_key": EMULATOR_KEY},
    ]
    gateway = start_gateway(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments,
        limits={"max_json_bytes": DECLARED, "max_audio_bytes": DECLARED},
    )
    before = spooled_files()
    head = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        f"Content-Length: {DECLARED}",
        *([f"Authorization: Bearer {key}"] if key else []),
    ]
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"--x\r\n" + b"a" * 4096)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert spooled_files() == before
