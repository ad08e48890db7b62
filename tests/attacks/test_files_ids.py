"""Attack: files and batches ids and uploads that try to reach another upstream path, or hold the gateway.

Hostile ids go over a raw socket (a client library would encode or normalise them); the recording upstream must
see nothing. Uploads: an oversized one is refused before it is read whole, a stalled one ends with the server's
body idle timeout, and a key without a valid secret costs no body byte.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..recorder import Recorder
from ..servers import AsgiServer
from .raw import raw_request

HOSTILE = [
    ("GET", "/v1/files/..%2Fchat%2Fcompletions"),
    ("GET", "/v1/files/file-abc%2F..%2F..%2Fdeployments"),
    ("GET", "/v1/files/file-abc%3Fapi-version=1999-01-01"),
    ("GET", "/v1/files/file-abc%23frag/content"),
    ("GET", "/v1/files/file-ab$c"),
    ("GET", "/v1/files/file-" + "a" * 65),
    ("GET", "/v1/files/FILE-abc"),
    ("GET", "/v1/files/file-abc/../../chat/completions"),
    ("DELETE", "/v1/files/file-%2e%2e"),
    ("GET", "/v1/files/file-abc/content/extra"),
    ("GET", "/v1/batches/batch_abc%2Fcancel"),
    ("POST", "/v1/batches/batch_abc%3F/cancel"),
    ("POST", "/v1/batches/file-abc/cancel"),
    ("GET", "/v1/batches/batch_abc/output"),
    ("PUT", "/v1/files/file-abc"),
    ("DELETE", "/v1/batches/batch_abc"),
    ("GET", "/openai/v1/files/..%2F..%2Fdeployments%2Fx"),
    ("GET", "/openai/files/file-abc%2F..?api-version=2024-10-21"),
    ("GET", "/openai/files/file-abc"),  # the dated surface without api-version
]


@pytest.fixture
def recorded(start_gateway: GatewayFactory) -> Iterator[tuple[Recorder, AsgiServer]]:
    rec = Recorder()
    with AsgiServer(rec) as upstream:
        deployments = [{"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream.url}]
        yield rec, start_gateway(upstream.url, deployments=deployments)


@pytest.mark.parametrize(("method", "path"), HOSTILE)
def test_hostile_ids_never_reach_the_upstream(recorded: tuple[Recorder, AsgiServer], method: str, path: str) -> None:
    rec, gateway = recorded
    headers = {"api-key": EMULATOR_KEY}
    status, _, body = raw_request(gateway.port, f"{method} {path} HTTP/1.1".encode(), headers)
    assert status in (400, 404, 405), (status, body)
    assert set(orjson.loads(body)["error"]) == {"message", "type", "param", "code"}
    assert rec.requests == []


def test_a_good_id_reaches_the_files_route_only(recorded: tuple[Recorder, AsgiServer]) -> None:
    rec, gateway = recorded
    line = b"GET /v1/files/file-abc123/content?limit=5&evil=1 HTTP/1.1"
    status, _, _ = raw_request(gateway.port, line, {"api-key": EMULATOR_KEY})
    assert status == 200
    seen = rec.requests[-1]
    assert (seen.method, seen.path, seen.query) == (
        "GET",
        "/openai/files/file-abc123/content",
        "limit=5&api-version=2024-10-21",  # list parameters by allowlist; `evil` stays here
    )
    # The Azure v1 surface with a `preview` version still reaches the dated route with the configured version.
    line = b"GET /openai/v1/batches?api-version=preview&limit=3 HTTP/1.1"
    assert raw_request(gateway.port, line, {"api-key": EMULATOR_KEY})[0] == 200
    assert (rec.requests[-1].path, rec.requests[-1].query) == ("/openai/batches", "limit=3&api-version=2024-10-21")


FORM_HEAD = (
    "POST /v1/files HTTP/1.1\r\nHost: g\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    "api-key: " + EMULATOR_KEY + "\r\nContent-Length: {length}\r\n\r\n"
)
PART = (
    b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n\r\n'
)


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_an_upload_past_the_limit_is_refused_before_it_is_read(
    start_gateway: GatewayFactory, emulator_server: AsgiServer
) -> None:
    gateway = start_gateway(files={"max_upload_bytes": 64 * 1024})
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(FORM_HEAD.format(length=500 * 1024 * 1024).encode() + PART)  # declares 500 MB, sends a part
        status, body = read_status(sock)
    assert status == 413, body
    # Undeclared (chunked) and too large: refused once the limit is passed.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        head = FORM_HEAD.replace("Content-Length: {length}", "Transfer-Encoding: chunked")
        sock.sendall(head.encode())
        for _ in range(100):
            piece = PART + b"x" * 4096
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            except OSError:
                break
        status, body = read_status(sock)
    assert status == 413, body


def test_a_stalled_upload_ends_with_the_body_idle_timeout(
    start_gateway: GatewayFactory, emulator_server: AsgiServer
) -> None:
    gateway = start_gateway(server={"body_idle_timeout_seconds": 0.5})
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(FORM_HEAD.format(length=10 * 1024 * 1024).encode() + PART + b'{"custom_id": "a"')
        status, body = read_status(sock)
    assert status == 408 and orjson.loads(body)["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 20
