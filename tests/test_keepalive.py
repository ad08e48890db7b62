"""The keep-alive race, and why a request is never sent twice to one deployment once a byte of it went out.

A chat completion is billed when the upstream reads it, whether or not its answer arrives. So a request goes to the
same upstream a second time only when not one byte of it was written: a pooled connection the upstream had closed
while it idled. A connection that breaks after the request was written, or while the answer is awaited, fails the
attempt: the gateway tries another deployment, or answers 502.

The upstream here is a raw socket server of the test's own: each request it reads gets the next scripted action.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from aoai_gateway.config import UpstreamSettings
from aoai_gateway.upstream import UpstreamRequest

from .conftest import GatewayFactory

BODY = (
    b'{"id":"chatcmpl-1","object":"chat.completion","choices":[],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)

ANSWER_AND_KEEP = "answer"  # answer, keep the connection for the next request
ANSWER_AND_CLOSE = "answer-close"  # answer, then close the idle connection (FIN) before the next request comes
ANSWER_AND_HOLD = "answer-hold"  # answer, keep the connection idle until `drop_idle()` closes it
RESET = "reset"  # read the whole request, then reset the connection (SO_LINGER 0): no answer
CLOSE = "close"  # read the whole request, then close the connection (FIN): no answer


class ScriptedUpstream:
    """Reads requests on any connection and answers the n-th one with `script[n]` (the last action repeats)."""

    def __init__(self, *script: str) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.bodies: list[bytes] = []  # every request read, in order
        self.closed = threading.Semaphore(0)  # released each time an idle connection was closed
        self._drop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            while (body := _read_request(connection)) is not None:
                with self._lock:
                    action = self.script[min(len(self.bodies), len(self.script) - 1)]
                    self.bodies.append(body)
                if action == RESET:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if action in (RESET, CLOSE):
                    return
                connection.sendall(ANSWER)
                if action == ANSWER_AND_CLOSE:
                    connection.shutdown(socket.SHUT_RDWR)
                    self.closed.release()
                    return
                if action == ANSWER_AND_HOLD:
                    self._drop.wait()
                    connection.shutdown(socket.SHUT_RDWR)
                    self.closed.release()
                    return

    def drop_idle(self) -> None:
        """Close the held connection and return once its FIN is sent: the client's kernel has it, its loop not yet."""
        self._drop.set()
        assert self.closed.acquire(timeout=10)

    def close(self) -> None:
        self._drop.set()
        self.listener.close()


def _read_request(connection: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        body += chunk
    return body


@pytest.fixture
def upstreams() -> Iterator[list[ScriptedUpstream]]:
    started: list[ScriptedUpstream] = []
    yield started
    for server in started:
        server.close()


def chat(content: str) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}


def seen(upstream: ScriptedUpstream, content: str) -> int:
    """How many copies of the request carrying `content` reached the upstream."""
    return sum(content.encode() in body for body in upstream.bodies)


def deployment(name: str, upstream: ScriptedUpstream, priority: int = 0) -> dict[str, object]:
    return {"model": "gpt-4o", "deployment": name, "endpoint": upstream.url, "api_key": "k", "priority": priority}


@pytest.mark.parametrize("client", ["httptools", "aiohttp", "httpx"])
def test_an_idle_connection_the_upstream_closed_is_not_written_to(
    client: str, upstreams: list[ScriptedUpstream], start_gateway: GatewayFactory
) -> None:
    upstream = ScriptedUpstream(ANSWER_AND_CLOSE)
    upstreams.append(upstream)
    gateway = start_gateway(deployments=[deployment("chat", upstream)], upstream={"client": client})
    with httpx.Client(base_url=f"{gateway.url}/v1", headers={"authorization": "Bearer any"}) as http:
        for n in range(3):
            assert http.post("/chat/completions", json=chat(f"request {n}")).status_code == 200
            assert upstream.closed.acquire(timeout=10)  # closed before the next request is sent
        metrics = http.get(f"{gateway.url}/metrics").text
    assert upstream.connections == 3 and [seen(upstream, f"request {n}") for n in range(3)] == [1, 1, 1]
    assert 'aoai_gateway_upstream_attempts_total{deployment="chat",model="gpt-4o",outcome="ok"} 3.0' in metrics


@pytest.mark.parametrize("client", ["httptools", "aiohttp", "httpx"])
@pytest.mark.parametrize("breaks", [RESET, CLOSE])
def test_a_pooled_connection_broken_after_the_request_is_not_sent_again(
    client: str, breaks: str, upstreams: list[ScriptedUpstream], start_gateway: GatewayFactory
) -> None:
    # The keep-alive race lost: the request was written to the reused connection, then it broke. The upstream may
    # have read it (here it did): one deployment only, so the client gets a 502 to retry, not a second billing.
    upstream = ScriptedUpstream(ANSWER_AND_KEEP, breaks, ANSWER_AND_KEEP)
    upstreams.append(upstream)
    gateway = start_gateway(deployments=[deployment("chat", upstream)], upstream={"client": client})
    with httpx.Client(base_url=f"{gateway.url}/v1", headers={"authorization": "Bearer any"}) as http:
        first = http.post("/chat/completions", json=chat("first"))
        broken = http.post("/chat/completions", json=chat("second"))
        third = http.post("/chat/completions", json=chat("third"))
        metrics = http.get(f"{gateway.url}/metrics").text
    assert (first.status_code, broken.status_code, third.status_code) == (200, 502, 200)
    assert broken.json()["error"]["code"] == "upstream_unreachable"
    assert [seen(upstream, content) for content in ("first", "second", "third")] == [1, 1, 1]
    assert (
        'aoai_gateway_upstream_attempts_total{deployment="chat",model="gpt-4o",outcome="upstream_unreachable"} 1.0'
        in metrics
    )


@pytest.mark.parametrize("client", ["httptools", "aiohttp", "httpx"])
@pytest.mark.parametrize("breaks", [RESET, CLOSE])
def test_a_request_read_then_unanswered_fails_over_to_the_next_deployment(
    client: str, breaks: str, upstreams: list[ScriptedUpstream], start_gateway: GatewayFactory
) -> None:
    resetting, healthy = ScriptedUpstream(breaks), ScriptedUpstream(ANSWER_AND_KEEP)
    upstreams.extend((resetting, healthy))
    gateway = start_gateway(
        deployments=[deployment("resetting", resetting), deployment("healthy", healthy, priority=1)],
        upstream={"client": client},
    )
    with httpx.Client(base_url=f"{gateway.url}/v1", headers={"authorization": "Bearer any"}) as http:
        response = http.post("/chat/completions", json=chat("once"))
        metrics = http.get(f"{gateway.url}/metrics").text
    assert response.status_code == 200
    assert (seen(resetting, "once"), seen(healthy, "once")) == (1, 1)
    assert (
        'aoai_gateway_upstream_attempts_total{deployment="resetting",model="gpt-4o",outcome="upstream_unreachable"} 1.0'
        in metrics
    )
    assert 'aoai_gateway_upstream_retries_total{deployment="healthy",model="gpt-4o"} 1.0' in metrics


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="on 3.12+ aiohttp writes the request in the very step that takes the connection from the pool",
)
async def test_aiohttp_sends_again_a_request_whose_pooled_connection_was_found_closing(
    upstreams: list[ScriptedUpstream],
) -> None:
    from aoai_gateway.upstream.aiohttp_client import AiohttpUpstream

    upstream = ScriptedUpstream(ANSWER_AND_HOLD, ANSWER_AND_KEEP)
    upstreams.append(upstream)
    resent: list[UpstreamRequest] = []
    client = AiohttpUpstream(UpstreamSettings(), resent.append)
    url = f"{upstream.url}/openai/deployments/chat/chat/completions"
    try:
        first = await client.send(UpstreamRequest("POST", url, [], b'{"n":"first"}', "chat"), stream=False)
        assert await first.read() == BODY
        await first.release()
        upstream.drop_idle()
        # The race as a busy gateway meets it: this task resumes in the loop turn that also reads the FIN, ahead of
        # it. It takes the pooled connection (still open as far as aiohttp knows); aiohttp writes the request in a
        # task of its own, after the FIN was read: that write is refused and nothing of the request goes out.
        await asyncio.sleep(0)
        second = await client.send(UpstreamRequest("POST", url, [], b'{"n":"second"}', "chat"), stream=False)
        assert second.status == 200 and await second.read() == BODY
        await second.release()
    finally:
        await client.aclose()
    assert [request.deployment for request in resent] == ["chat"]
    assert upstream.connections == 2 and (seen(upstream, "first"), seen(upstream, "second")) == (1, 1)


async def test_aiohttp_writes_a_body_of_several_chunks_whole(upstreams: list[ScriptedUpstream]) -> None:
    from aoai_gateway.upstream.aiohttp_client import AiohttpUpstream

    upstream = ScriptedUpstream(ANSWER_AND_KEEP)
    upstreams.append(upstream)
    body = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit: four writes
    client = AiohttpUpstream(UpstreamSettings())
    try:
        response = await client.send(UpstreamRequest("POST", f"{upstream.url}/upload", [], body), stream=False)
        assert response.status == 200 and await response.read() == BODY
        await response.release()
    finally:
        await client.aclose()
    assert upstream.bodies == [body]


async def test_httptools_checks_a_long_idle_connection_for_a_close_not_yet_read(
    upstreams: list[ScriptedUpstream],
) -> None:
    """The race a uvicorn upstream (5 s keep-alive) sets: its FIN reached our kernel, our loop has not read it, and
    a request is about to take the connection. Idle over a second, the pool lets the loop deliver the close first:
    the request goes out on a new connection, once, instead of into a closing one."""
    from aoai_gateway.upstream.httptools_client import HttptoolsUpstream

    upstream = ScriptedUpstream(ANSWER_AND_HOLD, ANSWER_AND_KEEP)
    upstreams.append(upstream)
    client = HttptoolsUpstream(UpstreamSettings())
    url = f"{upstream.url}/openai/deployments/chat/chat/completions"
    try:
        first = await client.send(UpstreamRequest("POST", url, [], b'{"n":"first"}', "chat"), stream=False)
        assert await first.read() == BODY
        await first.release()
        await asyncio.sleep(1.2)  # idle past the pool's staleness bound
        upstream.drop_idle()  # the FIN is in our kernel; the loop has not run since
        second = await client.send(UpstreamRequest("POST", url, [], b'{"n":"second"}', "chat"), stream=False)
        assert second.status == 200 and await second.read() == BODY
        await second.release()
    finally:
        await client.aclose()
    assert upstream.connections == 2 and (seen(upstream, "first"), seen(upstream, "second")) == (1, 1)
