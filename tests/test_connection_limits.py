"""What one client connection may hold, attacked with raw sockets: header floods, slowloris, stalled bodies,
idle connections, connection floods. Every refusal is OpenAI-shaped JSON and ends the connection."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from aoai_gateway.http.asgi import Message
from aoai_gateway.http.request import Request
from aoai_gateway.http.spool import RECEIVE_BUFFER, read_spooled

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import AsgiServer

MB = 1000 * 1000
FORM_HEAD = (
    "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: gateway\r\n"
    "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {length}\r\n\r\n"
)


@pytest.fixture
def connect() -> Iterator[Any]:
    """`connect(server)`: a raw loopback socket, closed after the test."""
    opened: list[socket.socket] = []

    def open_to(server: AsgiServer) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        opened.append(sock)
        return sock

    yield open_to
    for sock in opened:
        sock.close()


def send_all(sock: socket.socket, data: bytes) -> int:
    """Send until done or the server stops reading; how many bytes went."""
    sent = 0
    view = memoryview(data)
    try:
        while sent < len(data):
            sent += sock.send(view[sent : sent + 65536])
    except OSError:  # refused and closed: what was answered can still be read
        pass
    return sent


def read_until_closed(sock: socket.socket, seconds: float = 15.0) -> bytes:
    """Everything the server sends before it closes; fails if it is still open after `seconds`."""
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            break
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open for {seconds} s; got {data[:200]!r}")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length, leaving the connection open and the next response unread.

    It reads exactly one response's bytes: pipelined responses can arrive in one segment (they do on a busy
    machine), and what a larger read took of the next one would be lost to the next call.
    """
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"closed before a response: {data!r}"
        data += byte
    status, headers = parse_head(data[:-4])
    body = b""
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(int(headers["content-length"]) - len(body))
        assert chunk, f"closed in the body of a response: {data + body!r}"
        body += chunk
    return status, headers, body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {name.lower(): value for name, value in headers.items()}


def refusal(data: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A refusal: status, headers, and the `error` object of its OpenAI-shaped JSON body."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return status, headers, error


def spooled_files() -> dict[int, int]:
    """This process's open temporary files that have no name: fd -> size."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(tempfile.gettempdir()) and target.endswith(" (deleted)"):
                found[int(name)] = os.fstat(int(name)).st_size
        except OSError:  # closed meanwhile
            continue
    return found


def wait_for(condition: Any, seconds: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# Headers


def test_ten_megabytes_of_headers_get_431_json_and_a_closed_connection(
    start_gateway: GatewayFactory, connect: Any
) -> None:
    sock = connect(start_gateway())
    flood = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Flood: " + b"a" * (10 * MB)
    sent = send_all(sock, flood)
    status, _, error = refusal(read_until_closed(sock))
    assert status == 431 and error["code"] == "request_header_fields_too_large"
    assert "65536 bytes" in error["message"]
    assert sent <= len(flood)


def test_a_thousand_header_fields_get_431(start_gateway: GatewayFactory, connect: Any) -> None:
    sock = connect(start_gateway())
    fields = "".join(f"X-Field-{i}: v\r\n" for i in range(1000))
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: gateway\r\n{fields}\r\n".encode())
    status, _, error = refusal(read_until_closed(sock))
    assert status == 431 and "100 fields" in error["message"]


def test_headers_at_the_limits_are_served(start_gateway: GatewayFactory, connect: Any) -> None:
    sock = connect(start_gateway(server={"max_header_bytes": 4096, "max_headers": 10}))
    fields = "".join(f"X-Field-{i}: {'v' * 300}\r\n" for i in range(9))  # with Host, 10 fields in ~2.9 KB
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: gateway\r\n{fields}\r\n".encode())
    status, _, body = read_response(sock)
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: gateway\r\n{fields}X-Eleventh: v\r\n\r\n".encode())
    status, _, _ = refusal(read_until_closed(sock))
    assert status == 431


def test_a_large_head_arriving_with_its_body_in_one_read_is_still_counted(
    start_gateway: GatewayFactory, connect: Any
) -> None:
    sock = connect(start_gateway(server={"max_header_bytes": 4096}))
    body = b'{"model": "gpt-4o"}'
    head = f"POST /v1/chat/completions HTTP/1.1\r\nX-Big: {'a' * 8000}\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    status, _, _ = refusal(read_until_closed(sock))
    assert status == 431


# Timeouts


def test_slowloris_headers_are_cut_off_after_the_header_timeout(start_gateway: GatewayFactory, connect: Any) -> None:
    sock = connect(start_gateway(server={"header_timeout_seconds": 1}))
    head = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"s" * 5000 + b"\r\n\r\n"
    started = time.monotonic()
    answer = b""
    for byte in range(len(head)):  # one byte per 50 ms would take over 4 minutes: the server must cut it short
        try:
            sock.send(head[byte : byte + 1])
        except OSError:
            break
        if select.select([sock], [], [], 0.05)[0]:
            answer = read_until_closed(sock)
            break
    elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 15, elapsed
    status, _, error = refusal(answer)
    assert status == 408 and error["code"] == "request_timeout" and "headers" in error["message"]


def test_a_connection_that_never_speaks_is_closed_after_the_header_timeout(
    start_gateway: GatewayFactory, connect: Any
) -> None:
    sock = connect(start_gateway(server={"header_timeout_seconds": 0.5}))
    started = time.monotonic()
    assert read_until_closed(sock) == b""  # nothing was asked, nothing is answered
    assert time.monotonic() - started >= 0.4


def test_idle_keepalive_connections_are_closed(start_gateway: GatewayFactory, connect: Any) -> None:
    server = start_gateway(server={"keepalive_timeout_seconds": 0.5})
    socks = [connect(server) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert read_response(sock)[0] == 200
    started = time.monotonic()
    for sock in socks:
        assert read_until_closed(sock) == b""
    assert 0.4 <= time.monotonic() - started < 15


def test_pipelined_requests_are_all_answered(start_gateway: GatewayFactory, connect: Any) -> None:
    sock = connect(start_gateway(server={"header_timeout_seconds": 0.5, "keepalive_timeout_seconds": 0.5}))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n" * 3)
    assert [read_response(sock)[0] for _ in range(3)] == [200, 200, 200]
    assert read_until_closed(sock) == b""  # then idle: closed by the keep-alive timeout


def test_a_response_longer_than_the_header_timeout_is_not_cut(start_gateway: GatewayFactory) -> None:
    server = start_gateway(server={"header_timeout_seconds": 0.3, "body_idle_timeout_seconds": 0.3})
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"api-key": EMULATOR_KEY},
        json={"model": "gpt-4o-slow", "stream": True, "messages": [{"role": "user", "content": "a b c d e f"}]},
        timeout=30,
    ) as response:
        text = "".join(response.iter_text())
    assert time.monotonic() - started > 0.6  # the slow stream outlasted both timeouts
    assert text.rstrip().endswith("data: [DONE]")


def test_a_stalled_body_gets_408_and_its_spool_file_is_closed(start_gateway: GatewayFactory, connect: Any) -> None:
    before = set(spooled_files())
    sock = connect(start_gateway(server={"body_idle_timeout_seconds": 0.5}))
    sock.sendall(FORM_HEAD.format(length=5 * MB).encode() + b"x" * (2 * MB))
    wait_for(lambda: set(spooled_files()) - before, what="the body to be spooled")  # past RECEIVE_BUFFER
    status, _, error = refusal(read_until_closed(sock))
    assert status == 408 and error["code"] == "request_timeout" and "body" in error["message"]
    wait_for(lambda: not set(spooled_files()) - before, seconds=10, what="the spool file to be closed")


def test_a_slow_but_steady_body_is_not_timed_out(start_gateway: GatewayFactory, connect: Any) -> None:
    sock = connect(start_gateway(server={"body_idle_timeout_seconds": 0.5}))
    body = b'{"model": "gpt-4o-keyed", "messages": [{"role": "user", "content": "hi"}]}'
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    deadline = time.monotonic() + 1.5  # three body timeouts, each one byte short of idle
    for index in range(len(body)):
        sock.sendall(body[index : index + 1])
        if time.monotonic() < deadline:
            select.select([sock], [], [], 0.1)  # nothing to read yet; paces the trickle
    status, _, _ = read_response(sock)
    assert status == 200


# Memory


def test_sixty_stalled_nine_megabyte_uploads_do_not_hold_their_bodies_in_memory(
    start_gateway: GatewayFactory, connect: Any
) -> None:
    server = start_gateway(server={"body_idle_timeout_seconds": 120})
    before = set(spooled_files())
    body = b"x" * (9 * MB - 64 * 1024)  # all but the last 64 KB: the request never completes
    baseline = rss_bytes()
    socks = [connect(server) for _ in range(60)]
    for sock in socks:
        sock.sendall(FORM_HEAD.format(length=9 * MB).encode() + body)

    def all_received() -> bool:
        spooled = {fd: size for fd, size in spooled_files().items() if fd not in before}
        return len(spooled) == 60 and sum(spooled.values()) >= 60 * (len(body) - 512 * 1024)

    wait_for(all_received, seconds=120, what="60 bodies to reach the server")
    growth = rss_bytes() - baseline
    # Held in memory, the bodies alone would be 540 MB; spooled, each costs at most RECEIVE_BUFFER.
    assert growth < 60 * RECEIVE_BUFFER + 100 * MB, growth / MB
    for sock in socks:
        sock.close()
    wait_for(lambda: not set(spooled_files()) - before, seconds=30, what="60 spool files to be closed")


async def test_a_body_within_in_memory_comes_back_as_bytes_after_spooling() -> None:
    chunks = [b"a" * 65536] * 40  # 2.5 MiB, past RECEIVE_BUFFER
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    body = await read_spooled(Request(scope, receive), limit=10 * MB, in_memory=10 * MB)
    assert isinstance(body, bytes) and body == b"".join(chunks)


# Connections


def test_connections_past_the_cap_get_a_fast_503_with_retry_after(start_gateway: GatewayFactory, connect: Any) -> None:
    server = start_gateway(server={"max_connections": 4})
    held = [connect(server) for _ in range(4)]
    for sock in held:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert read_response(sock)[0] == 200  # accepted and counted, kept alive
    extra = [connect(server) for _ in range(20)]
    started = time.monotonic()
    for sock in extra:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        status, headers, error = refusal(read_until_closed(sock))
        assert status == 503 and headers["retry-after"] == "1" and error["code"] == "too_many_connections"
        sock.close()
    assert time.monotonic() - started < 10
    held.pop().close()

    def one_more_is_served() -> bool:
        sock = connect(server)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        status = read_response(sock)[0]
        sock.close()
        return status == 200

    wait_for(one_more_is_served, seconds=10, what="a freed slot")
