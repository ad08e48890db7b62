"""The default upstream client (upstream/httptools_client.py) against raw upstreams of the test's own.

What it must get right beyond the happy path: a full pool waits a bounded time, visibly, then answers 503; bodies
framed every way HTTP allows (length, chunked, until close); a slow reader does not make it buffer without bound;
a silent upstream times out; garbage from the upstream is a 502; nothing a header holds can split the request.
"""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from aoai_gateway import heap
from aoai_gateway.config import ServerSettings, UpstreamSettings
from aoai_gateway.errors import UpstreamPoolFull, UpstreamTimeout, UpstreamUnreachable
from aoai_gateway.heap import HeapPolicy, resident_bytes
from aoai_gateway.upstream import UpstreamRequest
from aoai_gateway.upstream.httptools_client import HttptoolsUpstream

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import child_environ

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answer(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), b"".join(extra), body)


class RawUpstream:
    """An asyncio server whose every connection runs `handler`; counts connections and keeps the request heads."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/openai/deployments/d/chat/completions"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[RawUpstream]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> RawUpstream:
        upstream = RawUpstream(handler)
        upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
        servers.append(upstream.server)
        return upstream

    yield start
    for server in servers:
        server.close()


def settings(**changes: object) -> UpstreamSettings:
    return UpstreamSettings.model_validate(changes)


async def test_requests_reuse_one_connection_and_see_the_answer(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            upstream.heads.append(head)
            writer.write(answer(b"echo:" + body, b"x-request-id: r1\r\n"))

    upstream = await serve(keep)
    client = HttptoolsUpstream(settings())
    try:
        for n in range(3):
            request = UpstreamRequest("POST", upstream.url + "?api-version=1", [("api-key", "k")], b"%d" % n)
            response = await client.send(request, stream=False)
            assert response.status == 200 and await response.read() == b"echo:%d" % n
            assert (b"x-request-id", b"r1") in response.raw_headers
            await response.release()
    finally:
        await client.aclose()
    assert upstream.connections == 1
    assert upstream.heads[0].startswith(b"POST /openai/deployments/d/chat/completions?api-version=1 HTTP/1.1\r\n")
    assert b"\r\napi-key: k\r\n" in upstream.heads[0] and b"\r\ncontent-length: 1\r\n" in upstream.heads[0]


async def test_chunked_and_until_close_bodies_are_read_whole(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        await read_request(reader)  # the connection stays usable

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\n\r\nsome ")
        await writer.drain()
        writer.write(b"bytes")

    client = HttptoolsUpstream(settings())
    try:
        first = await client.send(UpstreamRequest("POST", (await serve(chunked)).url, [], b"{}"), stream=True)
        assert [chunk async for chunk in first.iter_chunks()] in ([b"hello", b" world"], [b"hello world"])
        await first.release()
        second = await client.send(UpstreamRequest("POST", (await serve(until_close)).url, [], b"{}"), stream=False)
        assert await second.read() == b"some bytes"
        await second.release()
    finally:
        await client.aclose()


async def test_a_full_pool_waits_its_bound_then_answers_503(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await release.wait()
            writer.write(answer(b"ok"))

    upstream = await serve(slow)
    waiting: list[int] = []
    client = HttptoolsUpstream(settings(max_connections=2, pool_wait_seconds=0.2), on_waiting=waiting.append)
    try:
        busy = [asyncio.create_task(client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False))]
        busy.append(asyncio.create_task(client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False)))
        while upstream.connections < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(UpstreamPoolFull) as refused:
            await client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False)
        assert refused.value.status == 503 and refused.value.headers["retry-after"] == "1"
        assert refused.value.code == "upstream_pool_full"
        assert waiting == [1, 0]  # the gauge saw it wait, and saw it leave
        # A waiter is served as soon as a connection frees up, on that very connection.
        third = asyncio.create_task(client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False))
        while waiting[-1] != 1:
            await asyncio.sleep(0.01)
        client._pool.wait_seconds = 60  # the bound is not what ends this wait
        release.set()
        for task in busy:
            response = await task
            assert await response.read() == b"ok"
            await response.release()
        response = await third
        assert await response.read() == b"ok"
        await response.release()
    finally:
        await client.aclose()
    assert upstream.connections == 2 and waiting[-1] == 0


async def test_a_slow_reader_bounds_what_is_read_ahead(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    sent = 0

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        piece = b"data: " + b"x" * 16378 + b"\n\n"
        for _ in range(2000):  # 32 MiB if nothing pushed back
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            sent += len(piece)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    upstream = await serve(firehose)
    client = HttptoolsUpstream(settings())
    try:
        response = await client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=True)
        chunks = response.iter_chunks()
        total = len(await anext(chunks))
        await asyncio.sleep(0.3)  # the reader stalls; the upstream is pushed back by TCP, not buffered here
        connection = response._connection
        assert connection is not None and connection._body_bytes <= 512 * 1024
        assert sent < 16 * 1024 * 1024
        async for chunk in chunks:
            total += len(chunk)
        await response.release()
    finally:
        await client.aclose()
    assert total == 2000 * 16386


async def test_a_silent_upstream_times_out(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    upstream = await serve(silent)
    client = HttptoolsUpstream(settings(timeouts={"read": 0.2, "stream_idle": 0.2}))
    try:
        with pytest.raises(UpstreamTimeout):
            await client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "garbage",
    [b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab", b"HTTP/1.1 200 OK\r\ncont"],
)
async def test_garbage_or_a_cut_answer_is_unreachable(
    garbage: bytes, serve: Callable[..., Awaitable[RawUpstream]]
) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(garbage)
        await writer.drain()

    upstream = await serve(broken)
    client = HttptoolsUpstream(settings())
    try:
        with pytest.raises(UpstreamUnreachable):
            response = await client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False)
            await response.read()
    finally:
        await client.aclose()


@pytest.mark.parametrize("value", ["k\r\nx-injected: 1", "k\nx", "k\rx"])
async def test_a_header_with_a_line_break_is_never_sent(
    value: str, serve: Callable[..., Awaitable[RawUpstream]]
) -> None:
    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream.heads.append(await reader.read(65536))

    upstream = await serve(record)
    client = HttptoolsUpstream(settings())
    try:
        with pytest.raises(UpstreamUnreachable, match="line break"):
            await client.send(UpstreamRequest("POST", upstream.url, [("api-key", value)], b"{}"), stream=False)
    finally:
        await client.aclose()
    assert upstream.heads == []


async def test_a_large_body_goes_out_whole(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    received: list[bytes] = []

    async def upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        received.append(body)
        writer.write(answer(b"ok"))

    upstream = await serve(upload)
    body = bytes(range(256)) * (12 * 1024 + 3)  # 3 MiB and a bit: several writes
    client = HttptoolsUpstream(settings())
    try:
        response = await client.send(UpstreamRequest("POST", upstream.url, [], body), stream=False)
        assert await response.read() == b"ok"
        await response.release()
    finally:
        await client.aclose()
    assert received == [body]


async def test_idle_connections_close_after_keepalive(serve: Callable[..., Awaitable[RawUpstream]]) -> None:
    closed = asyncio.Event()

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await reader.read()  # until the client closes
        closed.set()

    upstream = await serve(keep)
    client = HttptoolsUpstream(settings(keepalive_seconds=0.2))
    try:
        response = await client.send(UpstreamRequest("POST", upstream.url, [], b"{}"), stream=False)
        await response.read()
        await response.release()
        await asyncio.wait_for(closed.wait(), 30)
        assert client._pool.open == 0
    finally:
        await client.aclose()


def test_a_full_pool_through_the_gateway_is_a_503_and_a_gauge(start_gateway: GatewayFactory) -> None:
    """With `upstream.max_connections: 1` one slow answer holds the pool: the next request waits its bound, then
    gets an OpenAI-shaped 503 with Retry-After; the wait shows on /metrics while it lasts."""
    release = threading.Event()
    holding = threading.Event()  # the first request reached the upstream: it holds the one connection
    listener = socket.create_server(("127.0.0.1", 0))

    def slow_upstream() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            holding.set()
            release.wait(60)
            connection.sendall(
                answer(b'{"object":"chat.completion","choices":[]}', b"content-type: application/json\r\n")
            )
            connection.recv(65536)

    threading.Thread(target=slow_upstream, daemon=True).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    gateway = start_gateway(
        deployments=[{"model": "gpt-4o", "deployment": "d", "endpoint": endpoint, "api_key": "k"}],
        upstream={"max_connections": 1, "pool_wait_seconds": 1.0},
    )
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with httpx.Client(base_url=gateway.url, timeout=120) as http, ThreadPoolExecutor(2) as pool:
            first = pool.submit(http.post, "/v1/chat/completions", json=chat)
            assert holding.wait(60)
            waiting = ""
            # The gauge is read while the second request waits its second; on a busy machine the reads may all
            # miss that window, so it is tried a few times (the first request's client never waits long).
            for _ in range(10):
                second = pool.submit(http.post, "/v1/chat/completions", json=chat)
                while not second.done() and "aoai_gateway_upstream_pool_waiting 1.0" not in waiting:
                    waiting = http.get("/metrics").text
                refused = second.result()
                if "aoai_gateway_upstream_pool_waiting 1.0" in waiting:
                    break
            assert "aoai_gateway_upstream_pool_waiting 1.0" in waiting
            release.set()
            assert first.result().status_code == 200
    finally:
        release.set()
        listener.close()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "upstream_pool_full" and error["type"] == "server_error" and "param" in error


async def test_the_heap_policy_freezes_and_passes_only_on_growth() -> None:
    policy = HeapPolicy(ServerSettings(gc_freeze_seconds=3600, gc_full_pass_minutes=0))
    loop = asyncio.get_running_loop()
    before = gc.get_threshold()
    policy.start(loop)
    try:
        assert gc.get_freeze_count() > 0 and policy.full_passes == 1
        assert gc.get_threshold()[0] == heap._YOUNG_THRESHOLD
        resident = resident_bytes()
        assert resident is not None and policy.baseline > 0
        policy._tick(loop)  # memory did not double: a young pass and a freeze, no full pass
        assert policy.full_passes == 1 and gc.get_freeze_count() > 0
        policy.baseline = resident // 3  # as if the process had since grown to three times its size
        policy._tick(loop)
        assert policy.full_passes == 2 and policy.baseline >= resident // 2
    finally:
        policy.stop()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_connection_caps_fit_the_open_file_limit() -> None:
    script = (
        "import resource, logging\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1000, 1000))\n"
        "from aoai_gateway.config import Settings\n"
        "from aoai_gateway.server import fit_open_files\n"
        "fitted = fit_open_files(Settings())\n"
        "print(fitted.server.max_connections, fitted.upstream.max_connections)\n"
        "kept = fit_open_files(Settings.model_validate({'server': {'max_connections': 5000}}))\n"
        "print(kept.server.max_connections)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_environ(), check=True
    )
    assert done.stdout.split() == ["468", "468", "5000"]


def test_a_slow_client_pushes_back_on_the_upstream_through_the_gateway(start_gateway: GatewayFactory) -> None:
    """The stream relay writes each chunk from the upstream connection's read callback (no task per chunk); when
    the client stops reading, the gateway stops reading the upstream: nothing piles up in between, and every
    byte still arrives in order."""
    piece = b"data: " + b"y" * 16370 + b"\n\n"
    count = 4000  # 64 MiB if nothing pushed back
    sent = [0]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)

    def firehose() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for n in range(count):
                event = piece.replace(b"yyyyyyyy", b"%08d" % n, 1)
                connection.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                sent[0] += len(event)
            connection.sendall(b"0\r\n\r\n")

    threading.Thread(target=firehose, daemon=True).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    gateway = start_gateway(deployments=[{"model": "gpt-4o", "deployment": "d", "endpoint": endpoint, "api_key": "k"}])
    body = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"go"}]}'
    port = int(gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        received = bytearray(client.recv(65536))
        for _ in range(100):  # the client stalls; the upstream keeps writing until TCP stops it
            time.sleep(0.02)
        stalled_at = sent[0]
        assert stalled_at < 40 * 1024 * 1024, (
            stalled_at
        )  # pushed back long before the whole 64 MiB (kernel buffers: ~16)
        while not received.endswith(b"0\r\n\r\n"):
            chunk = client.recv(1 << 20)
            assert chunk, "the gateway closed the stream early"
            received += chunk
    listener.close()
    # The body as the client's HTTP parser reads it: the gateway's own chunk sizes may fall inside an event.
    numbers = [int(found) for found in re.findall(rb"data: (\d{8})", dechunked(bytes(received)))]
    assert numbers == list(range(count))


def test_the_routing_deadline_ends_a_wait_for_a_silent_upstream(start_gateway: GatewayFactory) -> None:
    """`routing.deadline_seconds` bounds the wait for an answer's head even when the upstream read timeout is
    longer: a 504 naming the deadline, and the silent connection is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = threading.Event()

    def silent() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.settimeout(60)
            if connection.recv(65536) == b"":  # the gateway gave up and closed it
                closed.set()

    threading.Thread(target=silent, daemon=True).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    gateway = start_gateway(
        deployments=[{"model": "gpt-4o", "deployment": "d", "endpoint": endpoint, "api_key": "k"}],
        routing={"deadline_seconds": 0.5},
    )
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    listener.close()
    assert answer.status_code == 504, answer.text
    assert "routing deadline" in answer.json()["error"]["message"]
    assert closed.wait(30)


def test_a_served_request_leaves_no_reference_cycle(start_gateway: GatewayFactory) -> None:
    """The collector policy freezes what is alive every second: a reference cycle per request (the scope holding
    the server hooks holding the response writer holding the scope, as there was) would then be kept for good,
    about 16 bytes per request over two million. Served requests must leave nothing for the collector."""
    from aoai_gateway.http.asgi import ServerHooks
    from aoai_gateway.http.cycle import ResponseCycle

    gateway = start_gateway()
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    with httpx.Client(base_url=gateway.url, timeout=60, headers={"api-key": EMULATOR_KEY}) as http:
        for _ in range(3):
            http.post("/v1/chat/completions", json=chat)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for stream in (False, True) * 10:
                answer = http.post("/v1/chat/completions", json={**chat, "stream": stream})
                assert answer.status_code == 200, answer.text
            gc.collect()
            kinds = (ServerHooks, ResponseCycle, HttptoolsUpstream)
            leaked = [type(o).__name__ for o in gc.garbage if isinstance(o, kinds)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert leaked == []


def dechunked(response: bytes) -> bytes:
    """The body of a raw HTTP/1.1 response in chunked transfer encoding, its chunk framing taken out."""
    head, _, rest = response.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body, at = bytearray(), 0
    while True:
        line_end = rest.index(b"\r\n", at)
        size = int(rest[at:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(body)
        body += rest[line_end + 2 : line_end + 2 + size]
        at = line_end + 2 + size + 2
